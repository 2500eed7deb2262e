"""The orchestrator Lambda: one function that runs a whole run through the four steps."""
