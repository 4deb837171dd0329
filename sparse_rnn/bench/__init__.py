"""Speed benchmarks of ``SparseLSTM`` against ``nn.LSTM`` and plain sparse baselines.

``providers`` builds and checks the implementations, ``timing`` times them, ``sweep`` runs the
cases, ``record`` and ``plot`` save the results and ``roofline`` counts bytes per time step.
The ``sparse-rnn bench`` command and the pytest-benchmark suite in ``benchmarks/`` use them.
"""
