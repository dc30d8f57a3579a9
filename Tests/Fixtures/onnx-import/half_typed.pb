
*€x€ðBhalf