"""minires.summary: the layer-by-layer table of output shapes and parameter counts."""
import minires


def test_summary_matches_the_course_table(resnet):
    lines = []
    rows, totals = minires.summary(resnet, (3, 32, 32), depth=1, print_fn=lines.append)
    shapes = {row["name"]: row["output_shape"][1:] for row in rows}
    assert shapes == {"layer1": (64, 8, 8), "layer2": (256, 4, 4), "layer3": (512, 2, 2),
                      "layer4": (1024, 2, 2), "avgpool": (1024, 1, 1), "flatten": (1024,),
                      "fc": (10,)}
    assert totals == {"parameters": 14_750_730, "state_dict_entries": 373}
    text = "\n".join(lines)
    for shape in ("(1, 64, 8, 8)", "(1, 256, 4, 4)", "(1, 512, 2, 2)", "(1, 1024, 2, 2)",
                  "(1, 1024, 1, 1)", "(1, 10)"):
        assert shape in text
    assert "14,750,730" in text and "(2 + 2*0 - 2) // 2 + 1 = 1" in text
    assert resnet.training                              # summary restores the mode
