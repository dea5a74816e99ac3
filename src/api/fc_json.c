/* Firecracker's REST API: JSON bodies.  In: a table of fields per
 * resource checked in one place (unknown fields, types, required fields,
 * values), errors that name the config file and the JSON path.  Out:
 * strings made valid UTF-8, objects built field by field. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/fc_priv.h"

/* ---- errors -------------------------------------------------------------- */

int fc_fail_field(struct fc_req *q, const char *field, const char *fmt, ...)
{
    char text[400], path[128] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (q->where[0] && field)
        snprintf(path, sizeof(path), "%s.%.60s", q->where, field);
    else if (q->where[0])
        snprintf(path, sizeof(path), "%s", q->where);
    else if (field)
        snprintf(path, sizeof(path), "%.100s", field);
    return err_set(q->e, -EINVAL, "%s%s%s%s%s", q->file ? q->file : "", q->file ? ": " : "",
                   path, path[0] ? ": " : "", text);
}

int fc_oom(struct fc_req *q)
{
    return err_set(q->e, -ENOMEM, "out of memory");
}

/* ---- bodies: fields, types, values --------------------------------------- */

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

json_t *fc_jget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_null(v) ? NULL : v;
}

const char *fc_jget_str(json_t *o, const char *k)
{
    return json_string_value(fc_jget(o, k));
}

bool fc_jget_bool(json_t *o, const char *k, bool def)
{
    json_t *v = fc_jget(o, k);
    return v ? json_is_true(v) : def;
}

static int choice_find(const struct fc_choice *c, const char *s)
{
    for (int i = 0; c->values[i]; i++)
        if (!(c->icase ? strcasecmp : strcmp)(c->values[i], s))
            return i;
    return -1;
}

int fc_jget_choice(json_t *o, const char *k, const struct fc_choice *c, int def)
{
    const char *s = fc_jget_str(o, k);
    return s ? choice_find(c, s) : def;
}

/* One field's type (v is not absent). */
static int check_type(struct fc_req *q, const struct fc_field *d, json_t *v, bool required)
{
    static const char *const want[] = {
        [FT_STR] = "a string", [FT_BOOL] = "a boolean", [FT_UINT] = "an integer",
        [FT_OBJ] = "an object", [FT_ARR] = "an array",
    };
    if (d->type == FT_NULL)
        return json_is_null(v) ? 0 : fc_fail_field(q, d->name, "%s", d->why);
    bool ok = false;
    switch (d->type) {
    case FT_STR: ok = json_is_string(v); break;
    case FT_BOOL: ok = json_is_boolean(v); break;
    case FT_UINT: ok = json_is_integer(v); break;
    case FT_OBJ: ok = json_is_object(v) || (!d->required && json_is_null(v)); break;
    case FT_ARR: ok = json_is_array(v) || (!d->required && json_is_null(v)); break;
    case FT_NULL: break;
    }
    if (!ok && json_is_null(v) && !(required && d->required))
        ok = true;              /* null is absent, as serde's Option */
    if (!ok)
        return fc_fail_field(q, d->name, "expected %s, got %s", want[d->type], jtype(v));
    if (d->type == FT_UINT && json_integer_value(v) < 0)
        return fc_fail_field(q, d->name, "expected a non-negative integer, got %lld",
                             (long long)json_integer_value(v));
    return 0;
}

/* One field's value (given, of the right type). */
static int check_value(struct fc_req *q, const struct fc_field *d, json_t *v)
{
    if (d->type == FT_BOOL && d->why && json_is_true(v))
        return fc_fail_field(q, d->name, "%s", d->why);
    const char *s = json_string_value(v);
    if (d->choice && choice_find(d->choice, s) < 0)
        return d->choice->expected
            ? fc_fail_field(q, d->name, "unknown value `%.64s`, expected %s", s,
                            d->choice->expected)
            : fc_fail_field(q, d->name, "`%.64s` is not supported by Petrel (\"%s\" only)", s,
                            d->choice->values[0]);
    return d->check ? d->check(q, d->name, v) : 0;
}

/* o against f: an object, no unknown field, every field's type, the
 * required ones there (required), then every field's value. */
int fc_check_object(struct fc_req *q, json_t *o, const struct fc_field *f, bool required)
{
    if (!json_is_object(o))
        return fc_fail(q, "expected a JSON object, got %s", jtype(o));
    const char *key;
    json_t *v;
    int ret;
    json_object_foreach(o, key, v) {
        const struct fc_field *d = f;
        while (d->name && strcmp(d->name, key))
            d++;
        if (!d->name) {
            char list[300] = "";
            size_t n = 0;
            for (d = f; d->name && n < sizeof(list); d++)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s`%s`", d == f ? "" : ", ",
                                      d->name);
            return fc_fail(q, "unknown field `%.64s`, expected one of %s", key, list);
        }
        if ((ret = check_type(q, d, v, required)) < 0)
            return ret;
    }
    if (required)
        for (const struct fc_field *d = f; d->name; d++)
            if (d->required && !json_object_get(o, d->name))
                return fc_fail(q, "missing field `%s`", d->name);
    for (const struct fc_field *d = f; d->name; d++)
        if ((v = fc_jget(o, d->name)) && (ret = check_value(q, d, v)) < 0)
            return ret;
    return 0;
}

int fc_res_apply(struct fc_req *q, const struct fc_res *res, json_t *o)
{
    int ret = fc_check_object(q, o, res->fields, !res->partial);
    return ret < 0 ? ret : res->apply(q, o);
}

/* ---- JSON out ------------------------------------------------------------ */

/* Replace what is not valid UTF-8 (as jansson checks it: no overlong
 * forms, surrogates or code points past U+10FFFF) and control characters
 * by '?'; ascii: every byte past 0x7f too. */
static void utf8_sanitize(char *s, bool ascii)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned n;
        uint32_t cp, min;
        if (*p < 0x80) {
            if (*p < 0x20)
                *p = '?';
            p++;
            continue;
        }
        if (ascii)
            n = 4;
        else if ((*p & 0xe0) == 0xc0)
            n = 1, cp = *p & 0x1f, min = 0x80;
        else if ((*p & 0xf0) == 0xe0)
            n = 2, cp = *p & 0x0f, min = 0x800;
        else if ((*p & 0xf8) == 0xf0)
            n = 3, cp = *p & 0x07, min = 0x10000;
        else
            n = 4;
        unsigned i = 1;
        if (n < 4)
            for (; i <= n && (p[i] & 0xc0) == 0x80; i++)    /* stops at the NUL */
                cp = cp << 6 | (p[i] & 0x3f);
        if (n == 4 || i <= n || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

json_t *fc_jstring(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    char *copy = v ? NULL : strdup(s);
    for (int ascii = 0; !v && copy && ascii < 2; ascii++) {
        utf8_sanitize(copy, ascii);
        v = json_string(copy);
    }
    free(copy);
    return v;
}

bool fc_jset(json_t *o, const char *k, json_t *v)
{
    return v && json_object_set_new(o, k, v) == 0;
}

json_t *fc_jdone(json_t *o, bool ok)
{
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}
