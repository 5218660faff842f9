"""The job page: ``tagsweep exporter`` serves ``/`` (the jobs of its Redis) and ``/jobs/JOB``
(one job: its counts, a chart of its life, what did not end well, its report) beside
``/metrics``. Read-only; the numbers come from the same reads as ``tagsweep status``.

- ``views``: what a page shows, read through the job store (``producer.store``);
- ``failures``: the rows that did not end well, grouped by status and error;
- ``chart``: the timeline as an inline SVG;
- ``html``: the two pages, server-rendered;
- ``app``: the WSGI routes beside prometheus_client's ``/metrics``, and the server.
"""
