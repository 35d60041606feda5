"""Wire-faithful emulators of the calendar providers' HTTP APIs, for tests and demos."""
