"""What the step scripts share: how a step ends (`failure`, `runner`), reading CSV columns as
numbers XGBoost can hold (`columns`) and the model directory's layout (`model_files`).

Uploaded beside each step's entry script and imported by bare name (`from common import ...`),
so it must keep to what the SageMaker XGBoost 3.0-5 image has: Python 3.10, numpy, pyarrow.
"""
