"""Stand-ins for the outside world, served over real HTTP for end-to-end tests."""
