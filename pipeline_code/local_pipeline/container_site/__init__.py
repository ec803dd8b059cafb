"""The folder a local step's processes get on PYTHONPATH: its `sitecustomize` gives them the
container's view (see that module). Nothing here is imported by the interpreter itself."""
