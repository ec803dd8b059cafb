"""SageMaker pipeline definition, step scripts and the local runner."""
