"""`mlops`: the operator CLI of the loop (status, start, models, approve/reject, promote,
rollback, lineage, cost, diff-models), reading the environment from cdk.json like the CDK app."""
