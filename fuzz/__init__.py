"""Fuzzing harness for every RosettaMQ listener (issue 14).

Mutated valid inputs of each protocol (fuzz.seeds, fuzz.mutate) go to a real
gateway process (fuzz.process) batch by batch (fuzz.send); after each batch a
normal client of each protocol must round-trip within a second (fuzz.probes),
memory must stay bounded and the log must hold no traceback or ERROR line
(fuzz.runner). Run it with `python -m fuzz --seconds 60 --seed 1`, or
`python -m fuzz --minutes 480` for a night; see fuzz/__main__.py.
"""
