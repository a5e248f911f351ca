from fclf.evaluate.metrics import collapse_verdict


def test_healthy_set_is_not_collapsed():
    collapsed, reasons = collapse_verdict(0.95, 0.9, 0.05)
    assert not collapsed and reasons == []


def test_each_rule_fires_alone_and_names_itself():
    assert collapse_verdict(0.49, 0.9, 0.0)[1][0].startswith("distinct_fraction")
    assert collapse_verdict(0.9, 0.2, 0.0)[1][0].startswith("rank_ratio")
    assert collapse_verdict(0.9, 0.9, 0.95)[1][0].startswith("silhouette_by_target")


def test_thresholds_are_strict_and_configurable():
    assert not collapse_verdict(0.5, 0.25, 0.9)[0]  # exactly at the limits: healthy
    collapsed, reasons = collapse_verdict(
        0.6, 0.3, 0.5, min_distinct=0.7, min_rank_ratio=0.4, max_silhouette=0.4
    )
    assert collapsed and len(reasons) == 3
