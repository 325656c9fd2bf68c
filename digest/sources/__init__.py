"""Sources: turning Daily Papers inputs (API JSON, page HTML, saved text pages) into papers."""
