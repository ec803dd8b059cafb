"""Tests of the local run that interprets the pipeline definition (pipeline_code.local_pipeline)."""
