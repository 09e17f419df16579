"""Thin Azure Functions adapters: parse the trigger, call the core, log the outcome."""
