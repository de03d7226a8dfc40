"""Production records: the relational tables the indicators and reports rest on."""
