// SPDX-License-Identifier: GPL-2.0-only
/*
 * Runs the fuzz target without libFuzzer, as a regular test: every file of
 * the corpus directories given as arguments, plus deterministic variants of
 * each (truncations at many lengths, bit flips, bytes set to boundary
 * values). A parser bug shows as a crash here, or as an ASan report in a
 * sanitizer build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long runs;

static void run_one(const uint8_t *data, size_t size)
{
	LLVMFuzzerTestOneInput(data, size);
	runs++;
}

/* xorshift64: the same variants on every run. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void run_variants(const uint8_t *data, size_t size, uint64_t seed)
{
	static const uint8_t boundary[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
	uint8_t *copy = malloc(size ? size : 1);
	uint64_t state = seed | 1;
	size_t len, step, i;

	if (!copy)
		abort();
	run_one(data, size);

	/* Every length through the headers, then a couple of hundred more. */
	for (len = 0; len < size && len <= 512; len++)
		run_one(data, len);
	step = size / 200 ? size / 200 : 1;
	for (len = 513; len < size; len += step)
		run_one(data, len);

	for (i = 0; i < 300 && size; i++) {
		unsigned int flips = 1 + (unsigned int)(next_random(&state) % 8), f;
		/* Half the mutations hit the first 1 KB: headers and tables live there. */
		size_t span = (i & 1) && size > 1024 ? 1024 : size;

		memcpy(copy, data, size);
		for (f = 0; f < flips; f++) {
			size_t at = next_random(&state) % span;

			if (i % 3 == 2)
				copy[at] = boundary[next_random(&state) % sizeof(boundary)];
			else
				copy[at] ^= (uint8_t)(1u << (next_random(&state) % 8));
		}
		run_one(copy, size);
	}
	free(copy);
}

static int replay_file(const char *path, uint64_t seed)
{
	uint8_t *data = NULL;
	size_t size = 0, cap = 0, n;
	FILE *f = fopen(path, "rb");

	if (!f) {
		perror(path);
		return -1;
	}
	do {
		if (size == cap) {
			cap = cap ? cap * 2 : 65536;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
		n = fread(data + size, 1, cap - size, f);
		size += n;
	} while (n);
	fclose(f);
	run_variants(data, size, seed);
	free(data);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned long inputs = 0, failures = 0;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		struct dirent **entries;
		int count = scandir(argv[i], &entries, NULL, by_name), e;

		if (count < 0) {
			/* Not a directory: a single input, e.g. a crash file to reproduce. */
			failures += replay_file(argv[i], 0x9e3779b97f4a7c15ull) != 0;
			inputs++;
			continue;
		}
		for (e = 0; e < count; e++) {
			char path[4096];

			if (entries[e]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i], entries[e]->d_name);
				failures += replay_file(path,
							0x9e3779b97f4a7c15ull * (inputs + 1)) != 0;
				inputs++;
			}
			free(entries[e]);
		}
		free(entries);
	}
	printf("replayed %lu inputs as %lu runs\n", inputs, runs);
	printf("%lu passed, %lu failed\n", inputs - failures, failures);
	return failures || !inputs ? 1 : 0;
}
