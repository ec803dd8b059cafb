"""Bad-input corpus for the step scripts (prepare, train, evaluate), through their CLI contract.

Each script's `main(argv)` either processes the input correctly, or exits 1 with a clear
reason in the failure-reason file (FAILURE_REASON_FILE): non-empty, at most 1 KB, no Python or
native (XGBoost) traceback, and not the crash safety net's "unexpected <Exception>: ..." (that
means no check caught the input). tests/steps/ holds the one-test-per-kind cases; this corpus
adds random schemas and files (hypothesis), encodings, and the cases those tests don't cover.
"""
