"""Platform front ends: thin adapters between a messenger and the core."""
