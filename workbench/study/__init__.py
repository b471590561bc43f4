"""The study framework both methods' studies share: what a study is (a config with a budget per
size and one id rule, one record file, a runner of named stages that resumes: :mod:`.framework`),
the registry of result specs that report, dashboard and notebooks render from, with headline
numbers as data (:mod:`.results`), atomic result writers and the process-pool trainer
(:mod:`.files`), the claims ledger (:mod:`.ledger`) and the quotable findings batch
(:mod:`.findings`). Each method's study stages and result specs live in its folder under
:mod:`workbench.methods` (``study.py``, ``report.py``)."""
