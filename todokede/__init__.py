"""todokede (届出): unauthorized-access reporting, end to end.

The package is flat: ``access`` (tcp_wrappers rules), ``logs`` and ``detect`` (scan),
``probes`` (active checks), ``center`` (the reporting center). ``cli`` and
``center.web`` are thin shells over them.
"""

__version__ = "0.1.0"
