"""Foundations every stage stands on: settings, the database and its models and migrations,
the outbox that publishes after commit, counters, logs, broker connections and API keys.
"""
