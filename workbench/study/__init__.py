"""The study framework both methods' studies share: atomic result writers and the process-pool
trainer (:mod:`.files`), the claims ledger (:mod:`.ledger`) and the quotable findings batch
(:mod:`.findings`). Each method's study stages and report live in its folder under
:mod:`workbench.methods`."""
