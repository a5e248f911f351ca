"""Model wing: the conditional vector field and what is computed from it.

Owns the field v(z, y) with its hand-written JVP/VJP, flows and integrators on
the unit sphere, the curl/divergence Jacobian penalties, and model file I/O
(including the edit function that evaluation and `fclf transfer` call). May
import the top-level helpers only; never the data, train, evaluate or cli wings.
"""
