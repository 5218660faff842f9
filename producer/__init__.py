"""The user's side: from CSV files to queued work, and the ``tagsweep`` command line."""
