// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "discovery.h"
#include "discovery.skel.h"
#include "python/detect.h"
#include "target/container.h"
#include "target/process.h"
#include "util/log.h"
#include "util/parse.h"

PYX_SKEL_OPS(discovery_bpf);

/* Processes followed in the kernel at once (--all: every process of the host). */
#define DISCOVERY_MAX_TRACKED 32768

enum proc_state {
	PROC_PENDING = 0, /* in scope, no interpreter mapped (yet): a shell, ld.so still at work */
	PROC_TRACED,	  /* the command traces it */
	PROC_REFUSED,	  /* a Python the command cannot trace (said why once) */
};

struct disc_proc {
	pid_t pid;
	enum proc_state state;
	uint64_t since_ns;    /* CLOCK_MONOTONIC when examined last: older events are settled */
	uint64_t started_ns;  /* its fork or exec, when seen */
	uint64_t examine_ns;  /* looked at (again) then: a forked Python unless it execs
				first; a new image whose loader was still at work */
	unsigned int retries; /* looks again since its last exec (bounded) */
	void *cookie;	      /* PROC_TRACED: the command's state for it */
};

/*
 * A Python's forked child is looked at after this long: most children
 * exec at once (subprocess), and tracing the copy first would cost a BPF
 * object load each; a pre-fork server's workers wait this much.
 */
#define FORK_GRACE_NS 50000000ull
#define TICK_NS	      10000000ull /* the discovery's own tick: due looks */
#define RETRY_NS      10000000ull
#define MAX_RETRIES   50 /* then the process's next mapping brings it back */
/*
 * A new image or mapping is looked at this long after it is told, not at
 * once: the loader maps several libraries in a row (one look for them
 * all), and most processes of a busy host (a shell's /bin/true) are gone
 * by then, costing no look at all.
 */
#define SETTLE_NS 5000000ull

/* Whether a file holds a Python interpreter, decided once per file (device, inode). */
struct verdict {
	unsigned long dev;
	unsigned long inode;
	bool interpreter;
};

struct pyx_discovery {
	struct pyx_discovery_opts opts;
	struct pyx_session *session;
	int tracked_fd;
	struct pyx_container container;
	__u32 pid_ns; /* the container's PID namespace */
	struct disc_proc *procs;
	size_t nr_procs, cap_procs;
	struct verdict *verdicts;
	size_t nr_verdicts, cap_verdicts;
	bool seeded;
	bool listing; /* pyx_discovery__list(): /proc only, no BPF, nothing examined */
};

static const char *scope_label(const struct pyx_discovery_opts *opts, char *buf, size_t size)
{
	switch (opts->scope) {
	case PYX_SCOPE_CHILDREN:
		snprintf(buf, size, "process %d and its descendants", opts->root);
		break;
	case PYX_SCOPE_CONTAINER:
		snprintf(buf, size, "container %.12s", opts->container);
		break;
	default:
		snprintf(buf, size, "every Python process");
		break;
	}
	return buf;
}

static struct disc_proc *find_proc(struct pyx_discovery *d, pid_t pid)
{
	size_t i;

	for (i = 0; i < d->nr_procs; i++)
		if (d->procs[i].pid == pid)
			return &d->procs[i];
	return NULL;
}

static struct disc_proc *add_proc(struct pyx_discovery *d, pid_t pid)
{
	struct disc_proc *p = find_proc(d, pid);

	if (p)
		return p;
	if (d->nr_procs == d->cap_procs) {
		size_t cap = d->cap_procs ? d->cap_procs * 2 : 64;
		struct disc_proc *procs = realloc(d->procs, cap * sizeof(*procs));

		if (!procs)
			return NULL;
		d->procs = procs;
		d->cap_procs = cap;
	}
	p = &d->procs[d->nr_procs++];
	p->pid = pid;
	p->state = PROC_PENDING;
	p->since_ns = 0;
	p->started_ns = 0;
	p->examine_ns = 0;
	p->retries = 0;
	p->cookie = NULL;
	return p;
}

static void drop_proc(struct pyx_discovery *d, struct disc_proc *p)
{
	*p = d->procs[--d->nr_procs];
}

/* 1 or 0 for a file that holds an interpreter or not; -errno when it cannot be read now. */
static int verdict_of(struct pyx_discovery *d, struct pyx_process *proc, struct pyx_object *obj)
{
	struct verdict *v;
	size_t i;

	for (i = 0; i < d->nr_verdicts; i++)
		if (d->verdicts[i].dev == obj->dev && d->verdicts[i].inode == obj->inode)
			return d->verdicts[i].interpreter;
	/*
	 * Not readable now (remapped under our eyes, the process gone): no
	 * verdict, or this build would be judged no Python for the whole run.
	 */
	if (!pyx_process__object_elf(proc, obj))
		return -errno;
	if (d->nr_verdicts == d->cap_verdicts) {
		size_t cap = d->cap_verdicts ? d->cap_verdicts * 2 : 64;

		v = realloc(d->verdicts, cap * sizeof(*v));
		if (!v)
			return pyx_python__holds_interpreter(proc, obj);
		d->verdicts = v;
		d->cap_verdicts = cap;
	}
	v = &d->verdicts[d->nr_verdicts++];
	v->dev = obj->dev;
	v->inode = obj->inode;
	v->interpreter = pyx_python__holds_interpreter(proc, obj);
	return v->interpreter;
}

/*
 * Whether glibc's dynamic loader is still mapping a new image's libraries:
 * it maps the C library before the program's first instruction, and the
 * commands' probes need it (abort, __assert_fail).
 */
static bool still_loading(const struct pyx_process *proc)
{
	bool loader = false, libc = false;
	size_t i;

	for (i = 0; i < proc->nr_objects; i++) {
		const char *base = pyx_basename(proc->objects[i].path);

		loader |= !strncmp(base, "ld-linux", 8);
		libc |= !strcmp(base, "libc.so.6") || !strncmp(base, "libc-", 5);
	}
	return loader && !libc;
}

/*
 * runs_python(): look again soon: an interpreter is mapped but the loader
 * is not done, or a file could not be read.
 */
#define LOOK_AGAIN 2

/* What a look at a process's executable mappings tells, from the verdicts known. */
struct quick_look {
	struct pyx_discovery *d;
	bool unknown;	  /* a file never judged: the full look decides */
	bool interpreter; /* a file known to hold one */
	bool loader, libc;
};

static int look_at(void *ctx, unsigned long dev, unsigned long inode, const char *path)
{
	struct quick_look *q = ctx;
	const char *base = pyx_basename(path);
	size_t i;

	q->loader |= !strncmp(base, "ld-linux", 8);
	q->libc |= !strcmp(base, "libc.so.6") || !strncmp(base, "libc-", 5);
	for (i = 0; i < q->d->nr_verdicts; i++)
		if (q->d->verdicts[i].dev == dev && q->d->verdicts[i].inode == inode) {
			q->interpreter |= q->d->verdicts[i].interpreter;
			return 0;
		}
	q->unknown = true;
	return 0;
}

/* Open the process and judge each executable file it maps (once per file). */
static int full_look(struct pyx_discovery *d, pid_t pid)
{
	struct pyx_process *proc;
	bool unread = false;
	int err, found = 0;
	size_t i;

	err = pyx_process__open(pid, &proc);
	if (err)
		return err == -EOWNERDEAD ? -ESRCH : err;
	/* Every file judged, not just up to the first hit: later looks stay quick. */
	for (i = 0; i < proc->nr_objects; i++) {
		if (!proc->objects[i].executable)
			continue;
		err = verdict_of(d, proc, &proc->objects[i]);
		if (err < 0) {
			pyx_debug(d->opts.ctx, "process %d: cannot read %s now: %s", pid,
				  proc->objects[i].path, strerror(-err));
			unread = true;
		}
		if (err > 0)
			found = 1;
	}
	/* Not yet: the loader's next mapping (the C library) brings it back here. */
	if ((found && still_loading(proc)) || (!found && unread))
		found = LOOK_AGAIN;
	pyx_process__close(proc);
	return found;
}

/*
 * Whether process @pid maps a Python interpreter now (and is loaded).
 * -ESRCH when gone. Every exec and new mapping of every process in scope
 * comes here (--all: the whole host's), so the maps are read alone first;
 * the process is opened only when they hold a file never judged.
 */
static int runs_python(struct pyx_discovery *d, pid_t pid)
{
	struct quick_look q = {.d = d};
	int err = pyx_for_each_exec_mapping(pid, look_at, &q);

	if (err)
		return err;
	if (q.unknown)
		return full_look(d, pid);
	if (q.interpreter && q.loader && !q.libc)
		return LOOK_AGAIN;
	return q.interpreter;
}

/* Look at a process in scope again: when it runs Python now, the command starts on it. */
static void examine(struct pyx_discovery *d, struct disc_proc *p)
{
	int err;

	if (p->state != PROC_PENDING)
		return;
	p->since_ns = pyx_monotonic_ns();
	err = runs_python(d, p->pid);
	if (err < 0) {
		/* Gone (its exit is on the way), or not ours to read. */
		if (err != -ESRCH)
			pyx_debug(d->opts.ctx, "process %d: %s", p->pid, strerror(-err));
		return;
	}
	if (!err)
		return;
	if (err == LOOK_AGAIN) {
		/* Its next mapping brings it back; the tick too, should that come first. */
		if (++p->retries <= MAX_RETRIES)
			p->examine_ns = p->since_ns + RETRY_NS;
		return;
	}
	p->examine_ns = 0;
	err = d->opts.found(d->opts.cookie, d, p->pid, &p->cookie);
	p->state = err ? PROC_REFUSED : PROC_TRACED;
	if (err)
		return;
	if (p->started_ns)
		pyx_info(d->opts.ctx, "following process %d: started %.1f ms ago", p->pid,
			 (double)(pyx_monotonic_ns() - p->started_ns) / 1e6);
	else
		pyx_info(d->opts.ctx, "following process %d: running", p->pid);
}

static void end_proc(struct pyx_discovery *d, struct disc_proc *p, enum pyx_gone_reason why,
		     __u32 status)
{
	if (p->state == PROC_TRACED)
		d->opts.gone(d->opts.cookie, d, p->cookie, why, status);
	p->state = PROC_PENDING;
	p->cookie = NULL;
}

static void maybe_finished(struct pyx_discovery *d)
{
	/* --children, --container: nothing left to follow once every process is gone. */
	if (d->opts.scope != PYX_SCOPE_ALL && d->seeded && !d->nr_procs)
		pyx_session__stop_for(d->session, PYX_STOP_TARGET_EXIT);
}

static int discovery_on_record(void *cookie, const struct pyx_rec_hdr *hdr, size_t size)
{
	const struct pyx_rec_discovery *rec = (const void *)hdr;
	struct pyx_discovery *d = cookie;
	struct disc_proc *p, *parent;
	bool parent_python;
	pid_t pid;

	if (hdr->type != PYX_REC_DISCOVERY || size < sizeof(*rec))
		return 0;
	pid = (pid_t)rec->pid;
	switch (rec->event) {
	case PYX_DISCOVERY_FORK:
		parent = find_proc(d, (pid_t)rec->parent);
		parent_python = !parent || parent->state != PROC_PENDING;
		p = add_proc(d, pid); /* (may move the table: parent is stale from here) */
		if (!p)
			return -ENOMEM;
		pyx_debug(d->opts.ctx, "process %d forked %d", rec->parent, pid);
		p->started_ns = rec->time_ns;
		/*
		 * The same image as its parent: a Python's child is one too,
		 * unless it execs soon (at once when it shares the parent's
		 * memory: vfork, posix_spawn; its exec is what counts).
		 */
		if (parent_python && !(rec->flags & PYX_DISCOVERY_SHARED_MM))
			p->examine_ns = pyx_monotonic_ns() + FORK_GRACE_NS;
		break;
	case PYX_DISCOVERY_EXEC:
		p = add_proc(d, pid);
		if (!p)
			return -ENOMEM;
		pyx_debug(d->opts.ctx, "process %d ran execve", pid);
		/*
		 * Traced since this exec (events are read late): that was the
		 * new image. (A pending one is looked at anyway: cheap.)
		 */
		if (p->state == PROC_TRACED && p->since_ns > rec->time_ns) {
			pyx_debug(d->opts.ctx, "process %d: examined after this exec already", pid);
			break;
		}
		end_proc(d, p, PYX_GONE_EXEC, 0);
		p->started_ns = rec->time_ns;
		p->retries = 0;
		p->examine_ns = pyx_monotonic_ns() + SETTLE_NS;
		break;
	case PYX_DISCOVERY_MAPPED:
		p = find_proc(d, pid);
		if (!p)
			break;
		if (p->state == PROC_TRACED && d->opts.mapped)
			d->opts.mapped(d->opts.cookie, d, p->cookie);
		else if (p->state == PROC_PENDING && !p->examine_ns)
			/* (A look already due, a fork's grace, stays as it is.) */
			p->examine_ns = pyx_monotonic_ns() + SETTLE_NS;
		break;
	case PYX_DISCOVERY_EXIT:
		p = find_proc(d, pid);
		if (!p)
			break;
		if (p->state == PROC_TRACED) {
			end_proc(d, p, PYX_GONE_EXIT, rec->exit_code);
			pyx_info(d->opts.ctx, "process %d exited", pid);
		} else {
			pyx_debug(d->opts.ctx, "process %d exited", pid);
		}
		drop_proc(d, p);
		maybe_finished(d);
		break;
	}
	return 0;
}

/* Track @pid in the kernel and in the table, then look at it. */
static int seed(struct pyx_discovery *d, pid_t pid)
{
	struct pyx_discovery_proc value = {};
	__u32 key = (__u32)pid;
	struct disc_proc *p;

	if (pid == getpid())
		return 0;
	/* (An exec since the programs went live tracks it already: that entry stays.) */
	if (!d->listing && bpf_map_update_elem(d->tracked_fd, &key, &value, BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	p = add_proc(d, pid);
	if (!p)
		return -ENOMEM;
	if (!d->listing)
		examine(d, p);
	return 0;
}

static int seed_all(void *opaque, pid_t pid)
{
	struct pyx_discovery *d = opaque;
	char path[64], link[8];

	/* Kernel threads have no executable. */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (readlink(path, link, sizeof(link)) < 0)
		return 0;
	return seed(d, pid) == -ENOMEM ? -ENOMEM : 0;
}

/* Processes of the container's PID namespace, as the kernel side counts them. */
static int seed_container(void *opaque, pid_t pid)
{
	struct pyx_discovery *d = opaque;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	if (stat(path, &st) || (__u32)st.st_ino != d->pid_ns)
		return 0;
	return seed(d, pid) == -ENOMEM ? -ENOMEM : 0;
}

struct family {
	pid_t *pids;
	size_t nr, cap;
};

static int collect_pid(void *opaque, pid_t pid)
{
	struct family *f = opaque;

	if (f->nr == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		pid_t *pids = realloc(f->pids, cap * sizeof(*pids));

		if (!pids)
			return -ENOMEM;
		f->pids = pids;
		f->cap = cap;
	}
	f->pids[f->nr++] = pid;
	return 0;
}

/* The root and its descendants, parents before children (a fork since is seen in the kernel). */
static int seed_children(struct pyx_discovery *d)
{
	struct family all = {};
	pid_t *parents = NULL;
	size_t i, j, nr_done = 0;
	int err;

	err = pyx_for_each_pid(collect_pid, &all);
	if (err < 0)
		goto out_free;
	parents = calloc(all.nr ? all.nr : 1, sizeof(*parents));
	if (!parents) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < all.nr; i++)
		parents[i] = pyx_parent_of(all.pids[i]);
	err = seed(d, d->opts.root);
	if (err)
		goto out_free;
	/* Breadth first over the table just seeded: its size grows as children are found. */
	for (nr_done = 0; nr_done < d->nr_procs; nr_done++) {
		pid_t parent = d->procs[nr_done].pid;

		for (j = 0; j < all.nr; j++)
			if (parents[j] == parent && !find_proc(d, all.pids[j])) {
				err = seed(d, all.pids[j]);
				if (err == -ENOMEM)
					goto out_free;
			}
	}
	err = 0;
out_free:
	free(parents);
	free(all.pids);
	return err;
}

static int discovery_prepare(void *cookie, void *skel_ptr)
{
	struct discovery_bpf *skel = skel_ptr;

	(void)cookie;
	return bpf_map__set_max_entries(skel->maps.tracked, DISCOVERY_MAX_TRACKED);
}

static int discovery_attach(void *cookie, struct pyx_session *session, void *skel_ptr)
{
	struct pyx_discovery *d = cookie;
	struct discovery_bpf *skel = skel_ptr;
	struct bpf_program *progs[] = {skel->progs.on_exec, skel->progs.on_fork,
				       skel->progs.on_exit, skel->progs.on_mm_write};
	size_t i;
	int err;

	d->tracked_fd = bpf_map__fd(skel->maps.tracked);
	for (i = 0; i < PYX_ARRAY_SIZE(progs); i++) {
		struct bpf_link *link = bpf_program__attach(progs[i]);

		err = link ? pyx_session__add_link(session, link) : -errno;
		if (err) {
			pyx_error(d->opts.ctx, "cannot follow processes (%s): %s",
				  bpf_program__name(progs[i]), strerror(-err));
			return err;
		}
	}
	return 0;
}

/*
 * Processes whose exit the kernel could not tell are pruned here: its map
 * was full, or one was seeded just after it exited.
 */
static void prune(struct pyx_discovery *d)
{
	size_t i = 0;

	while (i < d->nr_procs) {
		struct disc_proc *p = &d->procs[i];
		bool traced = p->state == PROC_TRACED;
		__u32 key = (__u32)p->pid;

		if (kill(p->pid, 0) == 0 || errno != ESRCH) {
			i++;
			continue;
		}
		bpf_map_delete_elem(d->tracked_fd, &key);
		end_proc(d, p, PYX_GONE_EXIT, 0);
		if (traced)
			pyx_info(d->opts.ctx, "process %d exited", p->pid);
		drop_proc(d, p);
	}
	maybe_finished(d);
}

static int discovery_on_interval(void *cookie, struct pyx_session *session, bool final)
{
	struct pyx_discovery *d = cookie;
	int err;

	(void)session;
	size_t i;

	if (!d->seeded)
		return 0;
	if (!final)
		prune(d);
	else
		for (i = 0; i < d->nr_procs; i++)
			end_proc(d, &d->procs[i], PYX_GONE_STOP, 0);
	if (!d->opts.on_interval)
		return 0;
	err = d->opts.on_interval(d->opts.cookie, d, final);
	return err < 0 ? err : 0;
}

static int discovery_on_tick(void *cookie, struct pyx_session *session)
{
	struct pyx_discovery *d = cookie;
	uint64_t now = pyx_monotonic_ns();
	size_t i;

	if (!d->seeded)
		return 0;
	/* The kernel side does not wake us for each record (see tell()): read them now. */
	pyx_session__consume(session);
	for (i = 0; i < d->nr_procs; i++)
		if (d->procs[i].examine_ns && now >= d->procs[i].examine_ns) {
			d->procs[i].examine_ns = 0;
			examine(d, &d->procs[i]);
		}
	return d->opts.on_tick ? d->opts.on_tick(d->opts.cookie, d) : 0;
}

/* The container's PID namespace (a process of it, found now), and not the host's. */
static int container_pid_ns(void *opaque, pid_t pid)
{
	struct pyx_discovery *d = opaque;
	struct pyx_container c;
	char path[64];
	struct stat st;

	if (pyx_container_of_pid(pid, &c) || strcmp(c.id, d->container.id))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	if (stat(path, &st))
		return 0;
	d->pid_ns = (__u32)st.st_ino;
	return 1;
}

static int open_container(struct pyx_discovery *d)
{
	struct stat self;
	int err = pyx_container_resolve(d->opts.container, &d->container);

	if (err == -ENOENT) {
		pyx_error(d->opts.ctx,
			  "no container matches '%s' (list them with 'runc list' or 'docker ps')",
			  d->opts.container);
		return err;
	}
	if (err == -EEXIST) {
		pyx_error(d->opts.ctx, "'%s' matches several containers: give more of the id",
			  d->opts.container);
		return err;
	}
	if (!err)
		err = pyx_for_each_pid(container_pid_ns, d) < 0 ? -EIO : 0;
	if (err || !d->pid_ns) {
		pyx_error(d->opts.ctx, "cannot scan processes for container '%s': %s",
			  d->opts.container, strerror(err ? -err : ESRCH));
		return err ? err : -ESRCH;
	}
	if (!stat("/proc/self/ns/pid", &self) && (__u32)self.st_ino == d->pid_ns) {
		pyx_error(d->opts.ctx,
			  "container %.12s shares the host's PID namespace: use --all, or -p PID",
			  d->container.id);
		return -EINVAL;
	}
	return 0;
}

/* Every process in scope now, from /proc, into the table (and the kernel's map). */
static int seed_scope(struct pyx_discovery *d)
{
	switch (d->opts.scope) {
	case PYX_SCOPE_CHILDREN:
		return seed_children(d);
	case PYX_SCOPE_CONTAINER:
		return pyx_for_each_pid(seed_container, d);
	default:
		return pyx_for_each_pid(seed_all, d);
	}
}

int pyx_discovery__list(const struct pyx_discovery_opts *opts, pid_t **pids, size_t *nr)
{
	struct pyx_discovery d = {.opts = *opts, .tracked_fd = -1, .listing = true};
	size_t i;
	int err;

	*pids = NULL;
	*nr = 0;
	if (opts->scope == PYX_SCOPE_CONTAINER) {
		err = open_container(&d);
		if (err)
			return err;
	}
	err = seed_scope(&d);
	if (err < 0) {
		pyx_error(opts->ctx, "cannot look for processes: %s", strerror(-err));
		goto out_free;
	}
	*pids = calloc(d.nr_procs ? d.nr_procs : 1, sizeof(**pids));
	if (!*pids) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < d.nr_procs; i++)
		if (runs_python(&d, d.procs[i].pid) > 0)
			(*pids)[(*nr)++] = d.procs[i].pid;
	err = 0;
out_free:
	free(d.procs);
	free(d.verdicts);
	return err;
}

int pyx_discovery__run(const struct pyx_discovery_opts *opts)
{
	struct pyx_discovery_cfg cfg = {.scope = opts->scope, .self_tgid = (__u32)getpid()};
	struct pyx_discovery d = {.opts = *opts, .tracked_fd = -1};
	struct pyx_session_opts sopts = {
		.ctx = opts->ctx,
		.cfg = &cfg,
		.cfg_size = sizeof(cfg),
		.duration_ns = opts->duration_ns,
		.interval_ns = opts->interval_ns ? opts->interval_ns : 1000000000ull,
		/* The command's tick when it has one (the budget's 5 ms), else ours. */
		.tick_ns = opts->tick_ns && opts->tick_ns < TICK_NS ? opts->tick_ns : TICK_NS,
		.cookie = &d,
		.prepare = discovery_prepare,
		.attach = discovery_attach,
		.on_record = discovery_on_record,
		.on_interval = discovery_on_interval,
		.on_tick = discovery_on_tick,
	};
	int err;

	if (opts->scope == PYX_SCOPE_CONTAINER) {
		err = open_container(&d);
		if (err)
			return err;
		cfg.pid_ns = d.pid_ns;
	}
	err = pyx_session__start(&d.session, &discovery_bpf_ops, &sopts);
	if (err)
		goto out_free;
	/* The kernel follows forks and execs from now on: what it sees next is not missed. */
	err = seed_scope(&d);
	if (err < 0) {
		pyx_error(opts->ctx, "cannot look for processes: %s", strerror(-err));
		goto out_destroy;
	}
	d.seeded = true;
	maybe_finished(&d);
	err = pyx_session__run(d.session);
out_destroy:
	pyx_session__destroy(d.session);
out_free:
	free(d.procs);
	free(d.verdicts);
	return err;
}

int pyx_discovery__start_follower(struct pyx_discovery *disc, const struct pyx_skel_ops *ops,
				  struct pyx_session_opts *opts, struct pyx_session **session)
{
	int err;

	opts->follower = true;
	err = pyx_session__start(session, ops, opts);
	if (err)
		return err;
	err = pyx_session__follow(disc->session, *session);
	if (err) {
		pyx_session__destroy(*session);
		*session = NULL;
	}
	return err;
}

void pyx_discovery__end_follower(struct pyx_discovery *disc, struct pyx_session *session)
{
	if (!session)
		return;
	pyx_session__consume(session);
	pyx_session__unfollow(disc->session, session);
}

void pyx_discovery__for_each(struct pyx_discovery *disc,
			     void (*fn)(void *cookie, struct pyx_discovery *disc, void *proc))
{
	size_t i;

	for (i = 0; i < disc->nr_procs; i++)
		if (disc->procs[i].state == PROC_TRACED)
			fn(disc->opts.cookie, disc, disc->procs[i].cookie);
}

const char *pyx_discovery__gone_name(const struct pyx_discovery *disc, enum pyx_gone_reason why)
{
	switch (why) {
	case PYX_GONE_EXIT:
		return "target-exit";
	case PYX_GONE_EXEC:
		return "exec";
	default:
		return pyx_stop_reason_name(pyx_session__stop_reason(disc->session));
	}
}

void pyx_discovery__end(const struct pyx_discovery *disc, uint64_t drops[PYX_DROP__MAX],
			struct pyx_discovery_end *end)
{
	uint64_t own[PYX_DROP__MAX];
	int k;

	pyx_session__drops(disc->session, own);
	for (k = 0; k < PYX_DROP__MAX; k++)
		drops[k] += own[k];
	scope_label(&disc->opts, end->scope, sizeof(end->scope));
	end->stopped_by = pyx_stop_reason_name(pyx_session__stop_reason(disc->session));
	end->duration_ns = pyx_session__elapsed_ns(disc->session);
}
