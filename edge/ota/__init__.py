"""Over-the-air updates: signed releases (TUF), installed beside each other, tried, committed.

Publisher side: :mod:`edge.ota.repo` (``spectra-edge ota repo init | add | sign | serve``).
Device side: :mod:`edge.ota.updater` (``spectra-edge ota apply | status | rollback``), on the
layout of :mod:`edge.ota.layout`; :mod:`edge.ota.trial` is the boot counter and the rollback
(standard library only, so it runs from ``ExecStartPre`` even when a release is broken).
"""
