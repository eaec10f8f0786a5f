"""Date and number formats the hub uses instead of Django's, per language (FORMAT_MODULE_PATH)."""
