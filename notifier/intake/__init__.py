"""Step 2, the CMS: signed webhooks become articles and, when breaking, alerts."""
