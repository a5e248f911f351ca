"""The peers FCLF is compared with, and the supervised reference.

Every peer is trained on the train split only, reads a source itself with a
probe fitted on train (blind mode), has its hyper-parameters chosen on val by
the same rule as FCLF's (`fclf.evaluate.selection`, applied by
`fclf.evaluate.tuning`) and never sees the judge split or the truth:

- `mean_direction`: walk along the train class-mean differences of the
  requested attributes;
- `conditional_direction`: InterFaceGAN (Shen et al., CVPR 2020): a linear
  probe's normal with the other attributes' normals projected out, its C
  chosen on val;
- `code_line`: one line per (source code -> target code) pair: the difference
  of the two codes' train means, shrunk toward the mean-direction walk where a
  code is rare;
- `knn_analogy`: z + mean of the k nearest train faces with the target code -
  mean of the k nearest with the source code (a local analogy, no training);
- `conditional_flow`: a conditional normalising flow in the manner of
  StyleFlow (Abdal et al., TOG 2021): invert z with the source attributes,
  regenerate with the target ones (a masked autoregressive flow from `zuko` in
  the leading principal components of train; the rest of z is kept).

`reference` is not a peer: an editor fitted on exact counterfactual *pairs*
of train rows (synthetic data only; it uses the truth), the headroom marker.
It is never a baseline and never in the gate.

Peers are `fclf.evaluate.editors.PointEditor`s; `fclf.evaluate.peers.store`
saves and loads them.
"""
