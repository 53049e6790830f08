#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "lib/buf.h"
#include "lib/toml.h"

static char err[512];

static void parse_ok(const char *src, struct toml_table *t)
{
    int r = toml_parse(src, strlen(src), "agent.toml", NULL, t, err, sizeof(err));
    if (r < 0)
        fail_msg("unexpected error %d: %s", r, err);
}

/* Parses src (expected to fail) and returns the message. */
static const char *parse_err_lim(const char *src, size_t len, const struct toml_limits *lim,
                                 int want)
{
    struct toml_table t = {0};
    int r = toml_parse(src, len, "agent.toml", lim, &t, err, sizeof(err));
    if (r == 0) {
        toml_table_release(&t);
        fail_msg("parsed, but expected an error: %s", src);
    }
    assert_int_equal(r, want);
    return err;
}

static const char *parse_err(const char *src)
{
    return parse_err_lim(src, strlen(src), NULL, -EINVAL);
}

static const struct toml_value *get(const struct toml_table *t, const char *key)
{
    const struct toml_kv *kv = toml_table_peek(t, key);
    if (!kv)
        fail_msg("no key %s", key);
    return &kv->value;
}

static const struct toml_table *table(const struct toml_table *t, const char *key)
{
    const struct toml_value *v = get(t, key);
    assert_int_equal(v->type, TOML_TABLE);
    return &v->table;
}

static void test_tables_keys_comments(void **state)
{
    struct toml_table t;
    parse_ok("# a comment\n"
             "top = 1 # after a value\n"
             "\n"
             "[agent]   # after a header\n"
             "\ttoken = \"x\"\n"
             "id = 'lit'\n"
             "[ \"quoted table\" ]\n"
             "\"quoted key\" = true\n"
             "'literal key' = false\n"
             "\"\" = 3\n"
             "a-b_1 = 4\n"
             "1234 = 5\n",
             &t);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.kvs[0].key, "top");
    assert_int_equal(get(&t, "top")->integer, 1);
    const struct toml_table *a = table(&t, "agent");
    assert_int_equal(a->n, 2);
    assert_string_equal(get(a, "token")->str, "x");
    assert_string_equal(get(a, "id")->str, "lit");
    const struct toml_table *q = table(&t, "quoted table");
    assert_true(get(q, "quoted key")->boolean);
    assert_false(get(q, "literal key")->boolean);
    assert_int_equal(get(q, "")->integer, 3);
    assert_int_equal(get(q, "a-b_1")->integer, 4);
    assert_int_equal(get(q, "1234")->integer, 5);
    assert_null(toml_table_peek(q, "nope"));
    toml_table_release(&t);
    assert_int_equal(t.n, 0);
    toml_table_release(NULL);
}

static void test_positions(void **state)
{
    struct toml_table t;
    /* Columns count characters: "é" is two bytes, one column. */
    parse_ok("[agent]\n  \"é\" = \"ü\"\n", &t);
    const struct toml_kv *tab = &t.kvs[0];
    assert_int_equal(tab->pos.line, 1);
    assert_int_equal(tab->pos.col, 2);
    assert_int_equal(tab->value.pos.col, 1);
    const struct toml_kv *kv = &tab->value.table.kvs[0];
    assert_int_equal(kv->pos.line, 2);
    assert_int_equal(kv->pos.col, 3);
    assert_int_equal(kv->value.pos.line, 2);
    assert_int_equal(kv->value.pos.col, 9);
    toml_table_release(&t);
    assert_string_equal(parse_err("\"é\" = yes"),
                        "agent.toml:1:7: expected a value (string, integer, boolean or array), "
                        "got \"yes\"");
}

static void test_basic_strings(void **state)
{
    struct toml_table t;
    parse_ok("a = \"\\b\\t\\n\\f\\r\\\"\\\\\\u00e9\\U0001F600 tab\there\"\n"
             "b = \"\"\n"
             "c = 'C:\\path\\n \"x\"'\n",
             &t);
    assert_string_equal(get(&t, "a")->str, "\b\t\n\f\r\"\\\xC3\xA9\xF0\x9F\x98\x80 tab\there");
    assert_string_equal(get(&t, "b")->str, "");
    assert_string_equal(get(&t, "c")->str, "C:\\path\\n \"x\"");
    toml_table_release(&t);
}

static void test_multiline_strings(void **state)
{
    struct toml_table t;
    parse_ok("a = \"\"\"\nline1\nline2\"\"\"\n"
             "b = \"\"\"one \\\n     two \\   \n\n   three\"\"\"\n"
             "c = \"\"\"q\"\"\"\"\n"
             "d = \"\"\"q\"\"\"\"\"\n"
             "e = '''\nraw \\n \"\"\" text\n'''\n"
             "f = '''x'''''\n"
             "g = \"\"\"crlf\r\nend\\u0021\"\"\"\r\n",
             &t);
    assert_string_equal(get(&t, "a")->str, "line1\nline2");
    assert_string_equal(get(&t, "b")->str, "one two three");
    assert_string_equal(get(&t, "c")->str, "q\"");
    assert_string_equal(get(&t, "d")->str, "q\"\"");
    assert_string_equal(get(&t, "e")->str, "raw \\n \"\"\" text\n");
    assert_string_equal(get(&t, "f")->str, "x''");
    assert_string_equal(get(&t, "g")->str, "crlf\nend!");
    toml_table_release(&t);
}

static void test_integers(void **state)
{
    struct toml_table t;
    parse_ok("a = 0\nb = +17\nc = -42\nd = 1_000\ne = 0xDEAD_beef\nf = 0o755\ng = 0b1101\n"
             "h = 9223372036854775807\ni = -9223372036854775808\nj = -0\n",
             &t);
    assert_int_equal(get(&t, "a")->integer, 0);
    assert_int_equal(get(&t, "b")->integer, 17);
    assert_int_equal(get(&t, "c")->integer, -42);
    assert_int_equal(get(&t, "d")->integer, 1000);
    assert_int_equal(get(&t, "e")->integer, 0xDEADBEEF);
    assert_int_equal(get(&t, "f")->integer, 0755);
    assert_int_equal(get(&t, "g")->integer, 13);
    assert_true(get(&t, "h")->integer == INT64_MAX);
    assert_true(get(&t, "i")->integer == INT64_MIN);
    assert_int_equal(get(&t, "j")->integer, 0);
    toml_table_release(&t);

    int64_t v;
    assert_int_equal(toml_parse_integer("1_234", 5, &v), 0);
    assert_int_equal(v, 1234);
    assert_int_equal(toml_parse_integer("12x", 3, &v), -EINVAL);
    assert_int_equal(toml_parse_integer("", 0, &v), -EINVAL);
    assert_int_equal(toml_parse_integer("0x8000000000000000", 18, &v), -ERANGE);
    assert_int_equal(toml_parse_integer("99999999999999999999", 20, &v), -ERANGE);
}

static void test_booleans_arrays(void **state)
{
    struct toml_table t;
    parse_ok("t = true\nf = false\n"
             "e = []\n"
             "n = [ [1, 2], [\"a\"], [] ]\n"
             "m = [\n"
             "  \"a:9092\", # first\n"
             "  # a comment line\n"
             "  'b:9092',\n"
             "]\n"
             "x = [1, \"two\", true]\n",
             &t);
    assert_true(get(&t, "t")->boolean);
    assert_false(get(&t, "f")->boolean);
    assert_int_equal(get(&t, "e")->type, TOML_ARRAY);
    assert_int_equal(get(&t, "e")->array.n, 0);
    const struct toml_value *n = get(&t, "n");
    assert_int_equal(n->array.n, 3);
    assert_int_equal(n->array.items[0].array.n, 2);
    assert_int_equal(n->array.items[0].array.items[1].integer, 2);
    assert_string_equal(n->array.items[1].array.items[0].str, "a");
    assert_int_equal(n->array.items[2].array.n, 0);
    const struct toml_value *m = get(&t, "m");
    assert_int_equal(m->array.n, 2);
    assert_string_equal(m->array.items[0].str, "a:9092");
    assert_string_equal(m->array.items[1].str, "b:9092");
    assert_int_equal(m->array.items[1].pos.line, 8);
    const struct toml_value *x = get(&t, "x");
    assert_int_equal(x->array.items[0].type, TOML_INTEGER);
    assert_int_equal(x->array.items[1].type, TOML_STRING);
    assert_int_equal(x->array.items[2].type, TOML_BOOLEAN);
    toml_table_release(&t);
}

static void test_line_ends_bom_empty(void **state)
{
    struct toml_table t;
    parse_ok("\xEF\xBB\xBF[a]\r\nx = 1\r\n# c\r\ny = [\r\n 2,\r\n]\r\n", &t);
    const struct toml_table *a = table(&t, "a");
    assert_int_equal(t.kvs[0].pos.col, 2);
    assert_int_equal(get(a, "x")->integer, 1);
    assert_int_equal(get(a, "y")->array.items[0].integer, 2);
    toml_table_release(&t);
    parse_ok("", &t);
    assert_int_equal(t.n, 0);
    toml_table_release(&t);
    parse_ok("# only a comment\n\n   \n", &t);
    assert_int_equal(t.n, 0);
    toml_table_release(&t);
    assert_string_equal(toml_type_name(TOML_ARRAY), "array");
}

static void test_errors_values(void **state)
{
    assert_string_equal(parse_err("[agent]\ntoken = yes\n"),
                        "agent.toml:2:9: expected a value (string, integer, boolean or array), "
                        "got \"yes\"");
    assert_string_equal(parse_err("a = \n"), "agent.toml:1:5: expected a value (string, integer, "
                                             "boolean or array), got end of line");
    assert_string_equal(parse_err("a ="), "agent.toml:1:4: expected a value (string, integer, "
                                          "boolean or array), got end of file");
    assert_string_equal(parse_err("a = true2"), "agent.toml:1:5: expected a value (string, "
                                                "integer, boolean or array), got \"true2\"");
    assert_string_equal(parse_err("a = 5s"),
                        "agent.toml:1:5: expected a value (string, integer, boolean or array), "
                        "got \"5s\" (a duration is a string: \"5s\")");
    assert_string_equal(parse_err("a = {x = 1}"),
                        "agent.toml:1:5: inline tables ({...}) are not supported");
    assert_string_equal(parse_err("a = 1.5"), "agent.toml:1:5: floats are not supported, got "
                                              "\"1.5\"");
    assert_string_equal(parse_err("a = -inf"), "agent.toml:1:5: floats are not supported, got "
                                               "\"-inf\"");
    assert_string_equal(parse_err("a = 1e6"), "agent.toml:1:5: floats are not supported, got "
                                              "\"1e6\"");
    assert_string_equal(parse_err("a = 1979-05-27"),
                        "agent.toml:1:5: dates and times are not supported, got \"1979-05-27\"");
    assert_string_equal(parse_err("a = 07:32:00"),
                        "agent.toml:1:5: dates and times are not supported, got \"07:32:00\"");
}

static void test_errors_integers(void **state)
{
    assert_string_equal(parse_err("a = 0123"),
                        "agent.toml:1:5: invalid integer \"0123\": leading zeros are not allowed");
    assert_string_equal(parse_err("a = 1__0"), "agent.toml:1:5: invalid integer \"1__0\": \"_\" "
                                               "must stand between two digits");
    assert_string_equal(parse_err("a = 1_"), "agent.toml:1:5: invalid integer \"1_\": \"_\" must "
                                             "stand between two digits");
    assert_string_equal(parse_err("a = 0x"),
                        "agent.toml:1:5: invalid integer \"0x\": expected digits after the prefix");
    assert_string_equal(parse_err("a = 0b102"),
                        "agent.toml:1:5: invalid integer \"0b102\": expected a binary digit");
    assert_string_equal(parse_err("a = 0o8"),
                        "agent.toml:1:5: invalid integer \"0o8\": expected an octal digit");
    assert_string_equal(parse_err("a = +0x1"),
                        "agent.toml:1:5: invalid integer \"+0x1\": 0x, 0o and 0b integers take no "
                        "sign");
    assert_string_equal(parse_err("a = 9223372036854775808"),
                        "agent.toml:1:5: integer \"9223372036854775808\" does not fit in 64 bits");
}

static void test_errors_strings(void **state)
{
    assert_string_equal(parse_err("a = \"abc"),
                        "agent.toml:1:5: string is not closed before the end of the file");
    assert_string_equal(parse_err("a = \"abc\nb = 1\n"),
                        "agent.toml:1:5: string is not closed before the end of the line");
    assert_string_equal(parse_err("a = 'abc\n"),
                        "agent.toml:1:5: string is not closed before the end of the line");
    assert_string_equal(parse_err("a = \"x\\\ny\"\n"),
                        "agent.toml:1:5: string is not closed before the end of the line");
    assert_string_equal(parse_err("a = \"\\q\""),
                        "agent.toml:1:6: invalid escape \"\\q\" (expected \\b \\t \\n \\f \\r "
                        "\\\" \\\\ \\uXXXX or \\UXXXXXXXX)");
    assert_string_equal(parse_err("a = \"\\ x\""),
                        "agent.toml:1:6: invalid escape: \"\\\" followed by \" \"");
    assert_string_equal(parse_err("a = \"\\u12\""),
                        "agent.toml:1:6: \"\\u\" must be followed by 4 hexadecimal digits");
    assert_string_equal(parse_err("a = \"\\U0001F60\""),
                        "agent.toml:1:6: \"\\U\" must be followed by 8 hexadecimal digits");
    assert_string_equal(parse_err("a = \"\\uD800\""),
                        "agent.toml:1:6: \"\\uD800\" is not a Unicode scalar value");
    assert_string_equal(parse_err("a = \"\\U00110000\""),
                        "agent.toml:1:6: \"\\U00110000\" is not a Unicode scalar value");
    assert_string_equal(parse_err("a = \"\\u0000\""),
                        "agent.toml:1:6: \"\\u0000\": NUL is not allowed in strings");
    assert_string_equal(parse_err("a = \"x\x01\""),
                        "agent.toml:1:7: control character U+0001 must be escaped in a string");
    assert_string_equal(parse_err("a = 'x\x7f'"),
                        "agent.toml:1:7: control character U+007F must be escaped in a string");
    assert_string_equal(
        parse_err("a = \"\xff\""),
        "agent.toml:1:6: invalid UTF-8 (a byte that cannot start or continue a character)");
    assert_string_equal(
        parse_err("a = \"\xc0\xaf\""),
        "agent.toml:1:6: invalid UTF-8 (a byte that cannot start or continue a character)");
    assert_string_equal(
        parse_err("a = \"\xed\xa0\x80\""),
        "agent.toml:1:6: invalid UTF-8 (a byte that cannot start or continue a character)");
    assert_string_equal(parse_err("a = \"\"\"abc\n"),
                        "agent.toml:1:5: multi-line string is not closed before the end of the "
                        "file");
    assert_string_equal(parse_err("a = \"\"\"a\"\"\"\"\"\""),
                        "agent.toml:1:9: at most two quotes may stand before the closing \"\"\"");
    assert_string_equal(parse_err("a = '''a\x02'''"),
                        "agent.toml:1:9: control character U+0002 must be escaped in a string");
    assert_string_equal(parse_err("a = \"\"\"a\rb\"\"\""),
                        "agent.toml:1:9: a carriage return must be followed by a newline");
}

static void test_errors_structure(void **state)
{
    assert_string_equal(parse_err("a 1"), "agent.toml:1:3: expected \"=\" after the key, got "
                                          "\"1\"");
    assert_string_equal(parse_err("= 1"), "agent.toml:1:1: expected a key, got \"=\"");
    assert_string_equal(parse_err("a = 1 2"),
                        "agent.toml:1:7: expected end of line after the value, got \"2\"");
    assert_string_equal(parse_err("[t] x = 1"),
                        "agent.toml:1:5: expected end of line after the table header, got \"x\"");
    assert_string_equal(parse_err("a = 1\na = 2"),
                        "agent.toml:2:1: duplicate key \"a\" (first at line 1)");
    assert_string_equal(parse_err("[t]\na=1\n'a'=2"),
                        "agent.toml:3:1: duplicate key \"a\" in table \"t\" (first at line 2)");
    assert_string_equal(parse_err("[t]\n[\"t\"]"),
                        "agent.toml:2:2: table \"t\" is defined twice (first at line 1)");
    assert_string_equal(parse_err("t = 1\n[t]"),
                        "agent.toml:2:2: \"t\" is already a key (line 1), it cannot be a table");
    assert_string_equal(parse_err("[a.b]"),
                        "agent.toml:1:3: dotted table names are not supported: the config has one "
                        "level of tables, like [agent]");
    assert_string_equal(parse_err("[a"), "agent.toml:1:3: expected \"]\" after the table name, "
                                         "got end of file");
    assert_string_equal(parse_err("[]"), "agent.toml:1:2: expected a table name, got \"]\"");
    assert_string_equal(parse_err("a.b = 1"), "agent.toml:1:2: dotted keys are not supported: "
                                              "write the key under its [table]");
    assert_string_equal(parse_err("[[a]]"),
                        "agent.toml:1:1: arrays of tables ([[...]]) are not supported");
    assert_string_equal(parse_err("\"\"\"k\"\"\" = 1"),
                        "agent.toml:1:1: a key cannot be a multi-line string");
    assert_string_equal(parse_err("# \x01"),
                        "agent.toml:1:3: control character U+0001 is not allowed in a comment");
    assert_string_equal(parse_err("a = 1\r b = 2"),
                        "agent.toml:1:6: a carriage return must be followed by a newline");
    assert_string_equal(parse_err("a = [1, 2"),
                        "agent.toml:1:5: array is not closed before the end of the file");
    assert_string_equal(parse_err("a = [1 2]"),
                        "agent.toml:1:8: expected \",\" or \"]\" after an array item, got \"2\"");
    assert_string_equal(parse_err("a = [,]"), "agent.toml:1:6: expected a value (string, "
                                              "integer, boolean or array), got \",\"");
    assert_string_equal(parse_err("a = [1,,]"), "agent.toml:1:8: expected a value (string, "
                                                "integer, boolean or array), got \",\"");
    /* A NUL byte is a control character like any other. */
    assert_string_equal(parse_err_lim("a = \0", 5, NULL, -EINVAL),
                        "agent.toml:1:5: expected a value (string, integer, boolean or array), got "
                        "\"\\u0000\"");
}

static void test_limits(void **state)
{
    struct toml_limits lim = {
        .max_input = 64, .max_depth = 2, .max_string = 4, .max_array = 2, .max_keys = 2};
    const char *big = "a = 1 # .........................................................\n";
    assert_string_equal(parse_err_lim(big, strlen(big), &lim, -E2BIG),
                        "agent.toml: larger than 64 bytes");
    assert_string_equal(parse_err_lim("a = [[[1]]]", 11, &lim, -E2BIG),
                        "agent.toml:1:7: arrays are nested deeper than 2 levels");
    assert_string_equal(parse_err_lim("a = \"abcde\"", 11, &lim, -E2BIG),
                        "agent.toml:1:5: string is longer than 4 bytes");
    assert_string_equal(parse_err_lim("abcde = 1", 9, &lim, -E2BIG),
                        "agent.toml:1:1: key is longer than 4 bytes");
    assert_string_equal(parse_err_lim("a = [1,2,3]", 11, &lim, -E2BIG),
                        "agent.toml:1:10: array has more than 2 items");
    assert_string_equal(parse_err_lim("a=1\nb=2\nc=3", 11, &lim, -E2BIG),
                        "agent.toml:3:1: more than 2 keys in the top level");
    assert_string_equal(parse_err_lim("[t]\na=1\nb=2\nc=3", 15, &lim, -E2BIG),
                        "agent.toml:4:1: more than 2 keys in table \"t\"");
    assert_string_equal(parse_err_lim("[a]\n[b]\n[c]", 11, &lim, -E2BIG),
                        "agent.toml:3:2: more than 2 tables and keys at the top level");
    /* Just at the limits is fine. */
    struct toml_table t;
    assert_int_equal(toml_parse("a = [[\"abcd\"],2]", 16, "x", &lim, &t, err, sizeof(err)), 0);
    toml_table_release(&t);
    /* The default depth is bounded too. */
    char deep[64];
    memset(deep, '[', sizeof(deep));
    memcpy(deep, "a = ", 4);
    assert_string_equal(parse_err_lim(deep, sizeof(deep), NULL, -E2BIG),
                        "agent.toml:1:21: arrays are nested deeper than 16 levels");
}

static void test_helpers(void **state)
{
    char q[TOML_QUOTE_MAX];
    toml_quote("a\"b\\c\n\xff", 7, q, sizeof(q));
    assert_string_equal(q, "\"a\\\"b\\\\c\\u000A\\xFF\"");
    toml_quote("0123456789012345678901234567890123456789XYZ", 43, q, sizeof(q));
    assert_string_equal(q, "\"0123456789012345678901234567890123456789...\"");
    char small[6];
    toml_quote("abcdef", 6, small, sizeof(small));
    assert_string_equal(small, "\"abcd");

    assert_true(toml_utf8_valid("h\xC3\xA9", 3));
    assert_false(toml_utf8_valid("\xC3", 1));
    assert_false(toml_utf8_valid("\xF4\x90\x80\x80", 4));

    /* What toml_put_string writes parses back to the same bytes. */
    const char *s = "q\"b\\\b\t\n\f\r\x01\x7f é";
    struct buf b = BUF_INIT(1024);
    assert_int_equal(buf_puts(&b, "k = "), 0);
    assert_int_equal(toml_put_string(&b, s), 0);
    assert_string_equal(b.data, "k = \"q\\\"b\\\\\\b\\t\\n\\f\\r\\u0001\\u007F é\"");
    struct toml_table t;
    parse_ok(b.data, &t);
    assert_string_equal(get(&t, "k")->str, s);
    toml_table_release(&t);
    buf_release(&b);
}

static void test_read_file(void **state)
{
    char *dir = tu_mkdtemp();
    char path[512], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/agent.toml", dir);
    assert_int_equal(toml_read_file(path, 100, &data, &len, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(toml_read_file(dir, 100, &data, &len, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, ": is a directory, not a regular file"));
    /* A FIFO is refused at once: nothing waits for a writer (alarm: a hang fails the test). */
    char fifo[600];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    assert_int_equal(toml_read_file(fifo, 100, &data, &len, err, sizeof(err)), -EINVAL);
    alarm(0);
    assert_non_null(strstr(err, ": is a FIFO, not a regular file"));
    assert_int_equal(toml_read_file("/dev/null", 100, &data, &len, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "/dev/null: is a character device, not a regular file"));
    /* A path too long to be one is refused, not cut. */
    char longp[5000];
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(toml_read_file(longp, 100, &data, &len, err, sizeof(err)), -ENAMETOOLONG);
    assert_non_null(strstr(err, "the path is longer than 4095 bytes"));
    assert_int_equal(tu_write_file(path, "a = 1\n"), 0);
    assert_int_equal(toml_read_file(path, 3, &data, &len, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, ": larger than 3 bytes"));
    assert_int_equal(toml_read_file(path, 100, &data, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 6);
    assert_string_equal(data, "a = 1\n");
    free(data);
    assert_int_equal(tu_write_file(path, ""), 0);
    assert_int_equal(toml_read_file(path, 100, &data, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
    tu_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_keys_comments),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_basic_strings),
        cmocka_unit_test(test_multiline_strings),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_booleans_arrays),
        cmocka_unit_test(test_line_ends_bom_empty),
        cmocka_unit_test(test_errors_values),
        cmocka_unit_test(test_errors_integers),
        cmocka_unit_test(test_errors_strings),
        cmocka_unit_test(test_errors_structure),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_read_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
