import PSEdgeIR
