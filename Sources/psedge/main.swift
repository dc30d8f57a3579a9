print("psedge")
