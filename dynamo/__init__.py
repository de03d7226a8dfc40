"""The `dynamo` command line and the local demo orchestration."""
