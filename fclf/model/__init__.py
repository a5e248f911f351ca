"""Model wing: the conditional vector field and what is computed from it.

Owns the field v(z, s, y) = sum_j (y_j - s_j) h_j(z, y) with its hand-written
JVP/VJP and its own source reader s(z), flows, integrators and geodesics on the
unit sphere, the curl/divergence Jacobian penalties, and model file I/O (the
recorded horizon and the edit function that evaluation and `fclf transfer` call). May
import the top-level helpers only; never the data, train, evaluate or cli wings.
"""
