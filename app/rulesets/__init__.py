"""Rule sets: versions and their lifecycle (draft → published → active → retired)."""
