"""Step 1, readers: devices, their topics and preferences, the topic catalogue, bulk import."""
