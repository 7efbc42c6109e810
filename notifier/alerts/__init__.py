"""Step 3, alerts: drafts from editors and intake, their lifecycle and counts, opens, test sends."""
