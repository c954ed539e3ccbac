// SPDX-License-Identifier: GPL-2.0-only
/*
 * Thread names from threading.Thread objects (3.8-3.13), read from the
 * target's memory: thread states -> each thread's outermost Python frame ->
 * Thread._bootstrap's self -> its instance attributes (a dict, or 3.11+'s
 * values kept apart from a dict, keys shared in the class) -> "_name".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "python/threadnames.h"

#define MAX_INTERPRETERS 64   /* subinterpreters beyond are not read */
#define MAX_THREADS	 512  /* per interpreter: more are not named */
#define MAX_FRAMES	 4096 /* to a thread's outermost frame */
#define MAX_ATTRS	 128  /* instance attributes looked through */
#define MAX_KEY_CHARS	 64   /* an attribute name longer than this is not "_name" */
#define MAX_NAME_CHARS	 64   /* a longer thread name is not shown */

/* Object layouts of release and debug builds alike (Py_DEBUG adds no header fields since 3.8). */
#define OB_TYPE		      8
#define TP_BASICSIZE	      32
#define TP_FLAGS	      168
#define TP_DICTOFFSET	      288
#define TPFLAGS_INLINE_VALUES (1ul << 2) /* 3.13 */
#define TPFLAGS_MANAGED_DICT  (1ul << 4) /* 3.11+ */
#define DICT_KEYS	      32	 /* PyDictObject.ma_keys */
#define DICT_VALUES	      40	 /* PyDictObject.ma_values */
#define DICT_KEYS_GENERAL     0		 /* 3.11+ dk_kind: entries with a hash */

/* Per minor version (measured with DWARF on pyenv's 3.8.18 to 3.13.0 builds). */
struct object_layout {
	uint32_t frame_localsplus; /* the first local (self) of a frame */
	uint32_t ht_cached_keys;   /* PyHeapTypeObject: the keys its instances share */
};

static const struct object_layout layouts[] = {
	[8] = {.frame_localsplus = 360, .ht_cached_keys = 872},
	[9] = {.frame_localsplus = 360, .ht_cached_keys = 864},
	[10] = {.frame_localsplus = 352, .ht_cached_keys = 872},
	[11] = {.frame_localsplus = 72, .ht_cached_keys = 872},
	[12] = {.frame_localsplus = 72, .ht_cached_keys = 880},
	[13] = {.frame_localsplus = 72, .ht_cached_keys = 880},
};

struct reader {
	struct pyx_mem mem;
	struct pyx_code_cache *cache;
	const struct pyx_py_layout *walk;
	const struct pyx_code_layout *code;
	const struct object_layout *obj;
	unsigned int minor;
};

bool pyx_thread_names__supported(const struct pyx_python *py)
{
	return py->major == 3 && py->minor >= 8 && py->minor <= 13;
}

static int rd(struct reader *r, uint64_t addr, void *buf, size_t len)
{
	return pyx_mem_read(r->mem, addr, buf, len);
}

static int rd64(struct reader *r, uint64_t addr, uint64_t *out)
{
	return rd(r, addr, out, sizeof(*out));
}

/* Whether the str at @addr reads @want. */
static bool str_is(struct reader *r, uint64_t addr, const char *want)
{
	const char *s;

	return !pyx_code_cache__str(r->cache, addr, MAX_KEY_CHARS, &s) && !strcmp(s, want);
}

/*
 * The value of key @name in the keys object @keys: from @values (a split
 * table's array of values, parallel to the entries) when not 0, else from
 * the entry itself.
 */
static int keys_lookup(struct reader *r, uint64_t keys, uint64_t values, const char *name,
		       uint64_t *value)
{
	uint64_t entries, nentries, stride, key_off, size;
	uint8_t hdr[16];
	uint64_t i;
	int rc;

	if (r->minor <= 10) {
		/* dk_refcnt, dk_size, dk_lookup, dk_usable, dk_nentries, dk_indices[] */
		rc = rd64(r, keys + 8, &size) ?: rd64(r, keys + 32, &nentries);
		if (rc)
			return rc;
		if (!size || size > (1ull << 32))
			return -EINVAL;
		entries = keys + 40 + size * (size <= 0xff ? 1 : size <= 0xffff ? 2 : 4);
		stride = 24; /* me_hash, me_key, me_value */
		key_off = 8;
	} else {
		/* dk_refcnt, dk_log2_size, dk_log2_index_bytes, dk_kind, dk_version, dk_usable,
		 * dk_nentries, dk_indices[] */
		rc = rd(r, keys + 8, hdr, sizeof(hdr)) ?: rd64(r, keys + 24, &nentries);
		if (rc)
			return rc;
		if (hdr[1] > 40)
			return -EINVAL;
		entries = keys + 32 + (1ull << hdr[1]);
		stride = hdr[2] == DICT_KEYS_GENERAL ? 24 : 16;
		key_off = hdr[2] == DICT_KEYS_GENERAL ? 8 : 0;
	}
	for (i = 0; i < nentries && i < MAX_ATTRS; i++) {
		uint64_t key;

		if (rd64(r, entries + i * stride + key_off, &key) || !key || !str_is(r, key, name))
			continue;
		if (values)
			return rd64(r, values + i * 8, value);
		return rd64(r, entries + i * stride + key_off + 8, value);
	}
	return -ENOENT;
}

static int dict_lookup(struct reader *r, uint64_t dict, const char *name, uint64_t *value)
{
	uint64_t keys, values;
	int rc;

	rc = rd64(r, dict + DICT_KEYS, &keys) ?: rd64(r, dict + DICT_VALUES, &values);
	if (rc)
		return rc;
	/* A split table's values: an array (≤3.12), after a 4-byte header, padded (3.13). */
	if (values && r->minor >= 13)
		values += 8;
	return keys_lookup(r, keys, values, name, value);
}

/* Instance attribute @name of the object at @obj. */
static int attr_lookup(struct reader *r, uint64_t obj, const char *name, uint64_t *value)
{
	uint64_t type, flags, dict, keys, word;
	int64_t dictoffset;
	uint8_t valid[4];
	int rc;

	rc = rd64(r, obj + OB_TYPE, &type) ?: rd64(r, type + TP_FLAGS, &flags);
	if (rc)
		return rc;
	if (r->minor >= 11 && (flags & TPFLAGS_MANAGED_DICT)) {
		keys = 0;
		/*
		 * The word 3 before the object: its dict (3.11, 3.13), or on 3.12
		 * its values less 1 (the low bit tags values, which are aligned).
		 */
		rc = rd64(r, obj - 24, &word);
		if (rc)
			return rc;
		if (r->minor == 12 && (word & 1))
			return rd64(r, type + r->obj->ht_cached_keys, &keys)
				       ?: keys_lookup(r, keys, word + 1, name, value);
		if (word)
			return dict_lookup(r, word, name, value);
		if (r->minor == 11) {
			/* No dict: the values, 4 words before the object. */
			rc = rd64(r, obj - 32, &word)
				     ?: rd64(r, type + r->obj->ht_cached_keys, &keys);
			return rc ?: keys_lookup(r, keys, word, name, value);
		}
		if (r->minor == 13 && (flags & TPFLAGS_INLINE_VALUES)) {
			/* Values inline after the object: capacity, size, embedded, valid, values[]. */
			uint64_t size, values;

			rc = rd64(r, type + TP_BASICSIZE, &size);
			if (rc)
				return rc;
			values = obj + size;
			rc = rd(r, values, valid, sizeof(valid))
				     ?: rd64(r, type + r->obj->ht_cached_keys, &keys);
			if (rc)
				return rc;
			return valid[3] ? keys_lookup(r, keys, values + 8, name, value) : -ENOENT;
		}
		return -ENOENT;
	}
	rc = rd64(r, type + TP_DICTOFFSET, (uint64_t *)&dictoffset);
	if (rc)
		return rc;
	if (dictoffset <= 0)
		return -ENOENT;
	rc = rd64(r, obj + (uint64_t)dictoffset, &dict);
	if (rc)
		return rc;
	return dict ? dict_lookup(r, dict, name, value) : -ENOENT;
}

/* The Thread running on @tstate (Thread._bootstrap's self), or 0. */
static uint64_t thread_object(struct reader *r, uint64_t tstate)
{
	const struct pyx_py_layout *w = r->walk;
	uint64_t frame, outermost = 0, code, self, name_obj, file_obj;
	const char *name, *file;
	size_t len, n;

	if (rd64(r, tstate + w->ts_frame, &frame))
		return 0;
	if (frame && w->cframe_current_frame != PYX_OFF_NONE &&
	    rd64(r, frame + w->cframe_current_frame, &frame))
		return 0;
	for (n = 0; frame && n < MAX_FRAMES; n++) {
		uint8_t owner = 0;

		/* 3.12+: C shim frames (entries from C) hold no Python code. */
		if (w->owner_boundary != PYX_OFF_NONE &&
		    rd(r, frame + w->frame_owner, &owner, sizeof(owner)))
			return 0;
		if (w->owner_boundary == PYX_OFF_NONE || owner < w->owner_boundary)
			outermost = frame;
		if (rd64(r, frame + w->frame_previous, &frame))
			return 0;
	}
	if (!outermost || frame)
		return 0;
	if (rd64(r, outermost + w->frame_code, &code))
		return 0;
	code &= w->code_tag_mask;
	if (rd64(r, code + r->code->co_name, &name_obj) ||
	    rd64(r, code + r->code->co_filename, &file_obj) ||
	    pyx_code_cache__str(r->cache, name_obj, MAX_KEY_CHARS, &name) ||
	    pyx_code_cache__str(r->cache, file_obj, 4096, &file))
		return 0;
	len = strlen(file);
	if (strcmp(name, "_bootstrap") || len < 12 || strcmp(file + len - 12, "threading.py"))
		return 0;
	if (rd64(r, outermost + r->obj->frame_localsplus, &self))
		return 0;
	return self;
}

static int add_name(struct pyx_thread_names *names, uint64_t thread_id, const char *name)
{
	if (names->nr == names->cap) {
		size_t cap = names->cap ? names->cap * 2 : 16;
		struct pyx_thread_name *grown = realloc(names->names, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		names->names = grown;
		names->cap = cap;
	}
	names->names[names->nr].thread_id = thread_id;
	names->names[names->nr].name = name;
	names->nr++;
	return 0;
}

int pyx_thread_names__read(struct pyx_thread_names *names, const struct pyx_python *py,
			   const struct pyx_python_layout *layout, struct pyx_code_cache *cache,
			   struct pyx_mem mem)
{
	struct reader r = {
		.mem = mem,
		.cache = cache,
		.walk = &layout->walk,
		.code = &layout->code,
		.minor = py->minor,
	};
	const struct pyx_py_layout *w = &layout->walk;
	uint64_t interp, tstate;
	size_t i, n;
	int rc;

	names->nr = 0;
	if (!pyx_thread_names__supported(py))
		return -EOPNOTSUPP;
	r.obj = &layouts[py->minor];
	rc = rd64(&r, w->runtime + w->rt_interpreters_head, &interp);
	if (rc)
		return rc;
	/* Every interpreter: the list's head is the newest, a subinterpreter if any. */
	for (i = 0; interp && i < MAX_INTERPRETERS; i++) {
		if (rd64(&r, interp + w->interp_threads_head, &tstate))
			break;
		for (n = 0; tstate && n < MAX_THREADS; n++) {
			uint64_t thread_id, self, value;
			const char *name;

			if (!rd64(&r, tstate + w->ts_thread_id, &thread_id)) {
				self = thread_object(&r, tstate);
				if (self && !attr_lookup(&r, self, "_name", &value) &&
				    !pyx_code_cache__str(cache, value, MAX_NAME_CHARS, &name)) {
					rc = add_name(names, thread_id, name);
					if (rc)
						return rc;
				}
			}
			if (rd64(&r, tstate + w->ts_next, &tstate))
				break;
		}
		if (rd64(&r, interp + w->interp_next, &interp))
			break;
	}
	return 0;
}

const char *pyx_thread_names__of(const struct pyx_thread_names *names,
				 const struct pyx_rec_pystack *rec, size_t *len,
				 const char **source)
{
	size_t i;

	for (i = 0; rec->tstate && i < names->nr; i++)
		if (names->names[i].thread_id == rec->thread_id) {
			*len = strlen(names->names[i].name);
			*source = "threading";
			return names->names[i].name;
		}
	*len = strnlen(rec->comm, sizeof(rec->comm));
	*source = "comm";
	return rec->comm;
}

void pyx_thread_names__free(struct pyx_thread_names *names)
{
	free(names->names);
	names->names = NULL;
	names->nr = names->cap = 0;
}
