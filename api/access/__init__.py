"""Who may call the api: tokens for machines and scripts."""
