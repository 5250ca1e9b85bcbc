import pytest

from lmmap.errors import InputError
from lmmap.sheet import ModelSpec, read_sheet, sheet_extras, slugify

HEADER = "model_id\tsource\trevision\tdtype\tfamily\ttype\tsize\tcreated\ttrust_remote_code\n"


def sheet(tmp_path, *rows):
    path = tmp_path / "models.tsv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_rows_are_parsed_and_typed(tmp_path):
    specs = read_sheet(
        sheet(
            tmp_path,
            "org/m-1\torg/m-1\tabc123\tbfloat16\tllama\tllama-2\t6.7B\t2024-01-02\ttrue",
            "local\tmodels/local\t\t\t\t\t\t\t",
        )
    )
    a, b = specs
    assert (a.size, a.dtype, a.revision, a.trust_remote_code, a.slug) == (6.7e9, "bfloat16", "abc123", True, "org--m-1")
    assert (b.size, b.dtype, b.trust_remote_code, b.family) == (None, "auto", False, "unknown")


@pytest.mark.parametrize("model_id, slug", [("a/b c;d'e", "a--b_c_d_e"), ("../x", "--x"), ("ok_1.5", "ok_1.5")])
def test_slugs_are_safe_file_names(model_id, slug):
    assert slugify(model_id) == slug


@pytest.mark.parametrize(
    "row, record, field, message",
    [
        ("a\t\t\t\t\t\t\t\t", "line 2", "source", "empty"),
        ("a\ta\t\tfloat8\t\t\t\t\t", "line 2", "dtype", "float8"),
        ("a\ta\t\t\t\t\tbig\t\t", "line 2", "size", "'big'"),
        ("a\ta\t\t\t\t\t\tyesterday\t", "line 2", "created", "ISO date"),
        ("a\ta\t\t\t\t\t\t\tmaybe", "line 2", "trust_remote_code", "true/false"),
        ("zoo/a\ta\t\t\t\t\t\t\t", "line 2", "model_id", "demo zoo"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path, row, record, field, message):
    with pytest.raises(InputError) as info:
        read_sheet(sheet(tmp_path, row))
    assert (info.value.record, info.value.field) == (record, field) and message in str(info.value)


def test_ids_that_collide_as_slugs_are_refused(tmp_path):
    with pytest.raises(InputError, match="same slug 'a--b'"):
        read_sheet(sheet(tmp_path, "a/b\tx\t\t\t\t\t\t\t", "a--b\ty\t\t\t\t\t\t\t"))


def test_extra_columns_are_kept_and_bad_names_and_missing_file_are_reported(tmp_path):
    own = tmp_path / "own.tsv"
    own.write_text("model_id\tsource\tlicense\tparams_active\na\tx\tapache-2.0\t1.2\nb\ty\t\t3\n")
    assert [s.model_id for s in read_sheet(own)] == ["a", "b"]
    assert sheet_extras(own) == (
        ["license", "params_active"],
        {"a": {"license": "apache-2.0", "params_active": "1.2"}, "b": {"params_active": "3"}},
    )
    for name in ("slug", "mean_loglik", "two words"):
        bad = tmp_path / "bad.tsv"
        bad.write_text(f"model_id\tsource\t{name}\n")
        with pytest.raises(InputError, match="extra column"):
            read_sheet(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_sheet(tmp_path / "missing.tsv")


def test_extra_columns_reach_the_models_table_and_may_colour_the_map(tmp_path):
    import json

    from lmmap.cli import main
    from lmmap.workflow import check_config_columns

    own = tmp_path / "own.tsv"
    own.write_text("model_id\tsource\tlicense\na\tx\tmit\n")
    out = tmp_path / "models.json"
    assert main(["export-models", "--sheet", str(own), "--zoo", "{}", "--out", str(out)]) == 0
    (entry,) = json.loads(out.read_text())["models"]
    assert entry["license"] == "mit" and entry["slug"] == "a"
    assert ModelSpec.from_dict(entry).model_id == "a"
    check_config_columns({"models": str(own), "map": {"hues": ["type", "license"]}})
    with pytest.raises(InputError, match="not a models-table column"):
        check_config_columns({"models": str(own), "map": {"hues": ["colour"]}})


@pytest.mark.parametrize(
    "rows, record, message",
    [
        # a stray quote once swallowed the tabs and lines up to the next quote: three rows became two
        (['"a\tx\t\t\t\t\t\t\t', "b\ty\t\t\t\t\t\t\t", 'c"\tz\t\t\t\t\t\t\t'], None, None),
        (["a\tx\t\t\t\t\t\t\t\textra"], "line 2", "10 cells, but the header has 9"),
        (["a\tx\t\t\t"], "line 2", "5 cells, but the header has 9"),
        (["a\tx\t\t\t\t\t\t\t", "", "b\ty"], "line 4", "2 cells, but the header has 9"),
    ],
)
def test_the_sheet_is_plain_tsv_with_exactly_the_header_cells(tmp_path, rows, record, message):
    if message is None:
        specs = read_sheet(sheet(tmp_path, *rows))
        assert [(s.model_id, s.source) for s in specs] == [('"a', "x"), ("b", "y"), ('c"', "z")]
        return
    with pytest.raises(InputError) as info:
        read_sheet(sheet(tmp_path, *rows))
    assert info.value.record == record and message in str(info.value)


def test_a_model_id_starting_with_hash_is_a_row_and_comments_come_before_the_header(tmp_path):
    path = tmp_path / "models.tsv"
    path.write_text("# a comment\n# another\nmodel_id\tsource\n#1\tx\nplain\ty\n")
    assert [s.model_id for s in read_sheet(path)] == ["#1", "plain"]


def test_a_repeated_column_is_an_error_naming_the_header_line(tmp_path):
    path = tmp_path / "models.tsv"
    path.write_text("# comment\nmodel_id\tsource\tsource\na\tx\ty\n")
    with pytest.raises(InputError) as info:
        read_sheet(path)
    assert info.value.record == "line 2 (header)" and "['source'] appear more than once" in str(info.value)


def test_a_byte_order_mark_and_windows_line_ends_are_not_part_of_the_cells(tmp_path):
    path = tmp_path / "models.tsv"
    path.write_bytes("\ufeffmodel_id\tsource\r\norg/a\tx\r\n".encode("utf-8"))
    [spec] = read_sheet(path)
    assert (spec.model_id, spec.source) == ("org/a", "x")


def test_the_growth_cut_places_dated_models_on_or_after_it():
    """Models created on or after the cut are placed, undated ones and all without a cut are mapped."""
    from lmmap.sheet import created_on_or_after

    created = ["2024-01-01", None, "2024-06-01", "2024-05-31"]
    assert created_on_or_after(created, "2024-06-01").tolist() == [False, False, True, False]
    assert created_on_or_after(created, "2023-12-31").tolist() == [True, False, True, True]
    assert created_on_or_after(created, None).tolist() == [False] * 4
