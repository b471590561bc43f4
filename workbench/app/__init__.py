"""The Panel dashboard (``workbench serve``): every study and model of the library in a browser.

Pages: embedding geometry with linked frame thumbnails and selection export, accuracies and the
cross-game KNN matrix, live percentile calibration, the catalog with a frame/flow viewer, and the
studies and model cards. :mod:`.main` lays it out, :mod:`.server` serves it safely,
:mod:`.sources` caches what it reads, :mod:`.exports` hands selections back to notebooks::

    from workbench.app.exports import load_selection
    load_selection("my-selection")
"""
