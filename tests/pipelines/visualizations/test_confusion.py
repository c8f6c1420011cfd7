"""Confusion matrices: rows are the true class, columns the predicted one; labels that do
not match the counts are named in the error."""

import pytest

from pipelines.visualizations import confusion
from pipelines.visualizations.base import OutputError

SCHEMA = [{"name": "target", "type": "CATEGORY"}, {"name": "predicted", "type": "CATEGORY"},
          {"name": "count", "type": "NUMBER"}]
SAMPLE = "cat,cat,8\ncat,dog,2\ndog,cat,1\ndog,dog,9\n"


def test_it_reads_the_kfp_v1_sample():
    assert confusion.from_csv(SAMPLE, SCHEMA, ["cat", "dog"]) == {
        "labels": ["cat", "dog"], "matrix": [[8, 2], [1, 9]]}


def test_it_takes_the_column_order_from_the_schema():
    schema = [SCHEMA[2], SCHEMA[1], SCHEMA[0]]  # count, predicted, target
    text = "8,cat,cat\n2,dog,cat\n1,cat,dog\n9,dog,dog\n"
    assert confusion.from_csv(text, schema, ["cat", "dog"])["matrix"] == [[8, 2], [1, 9]]


def test_missing_cells_are_zero_repeated_ones_add_up_and_fractions_stay():
    text = "cat,cat,8\ncat,cat,1\ndog,cat,0.5\n"
    assert confusion.from_csv(text, None, ["cat", "dog"])["matrix"] == [[9, 0], [0.5, 0]]


def test_numeric_labels_are_text():
    data = confusion.from_csv("0,0,3\n1,0,1\n", SCHEMA, [0, 1])
    assert data == {"labels": ["0", "1"], "matrix": [[3, 0], [1, 0]]}


def test_labels_that_do_not_match_the_csv_are_an_error_naming_them():
    with pytest.raises(OutputError, match=r"The CSV names bird, fish, not among the labels "
                                          r"\(cat, dog\)\."):
        confusion.from_csv(SAMPLE + "bird,cat,1\ncat,fish,2\n", SCHEMA, ["cat", "dog"])


@pytest.mark.parametrize(("text", "labels", "message"), [
    (SAMPLE, None, 'The output\'s "labels" must be a list of class names.'),
    (SAMPLE, ["cat", "cat"], "repeat cat"),
    ("cat,cat,many\n", ["cat"], "“many” in the column count is not a number"),
    ("cat,cat\n", ["cat"], r"Line 1 of the CSV has 2 field\(s\), not 3."),
])
def test_bad_csv_is_an_error(text, labels, message):
    with pytest.raises(OutputError, match=message):
        confusion.from_csv(text, SCHEMA, labels)


def test_it_reads_v2_confusion_matrix():
    struct = {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
              "rows": [{"row": [8, 2]}, {"row": [1, 9]}]}
    assert confusion.from_struct(struct) == {"labels": ["cat", "dog"],
                                             "matrix": [[8, 2], [1, 9]]}


@pytest.mark.parametrize(("struct", "message"), [
    ([], "confusionMatrix is not an object."),
    ({"rows": []}, "confusionMatrix has no annotationSpecs list."),
    ({"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
      "rows": [{"row": [8, 2]}]},
     r"The confusion matrix names 2 classes \(cat, dog\) but has 1 rows."),
    ({"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
      "rows": [{"row": [8, 2]}, {"row": [1]}]},
     r"The row of dog has 1 counts; the matrix names 2 classes \(cat, dog\)."),
    ({"annotationSpecs": [{"displayName": "cat"}], "rows": [{"row": ["8"]}]},
     "The row of cat holds something that is not a number."),
    ({"annotationSpecs": [{"name": "cat"}], "rows": [{"row": [8]}]},
     "annotationSpecs must be a list of class names."),
])
def test_bad_v2_confusion_matrix_is_an_error(struct, message):
    with pytest.raises(OutputError, match=message):
        confusion.from_struct(struct)
