// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/perf_event.h>

#include "session.h"
#include "util/log.h"
#include "util/parse.h"

#define CTL_SECTION  ".data.ctl"
#define CFG_SECTION  ".rodata.cfg"
#define RINGBUF_NAME "events"
/*
 * An optional second ring for short records that must be handled while the
 * target is still alive (e.g. code objects to name): consumed first, and on
 * demand between long records of the main ring (pyx_session__drain_urgent).
 */
#define URGENT_RINGBUF_NAME "urgent"

struct pyx_session {
	const struct pyx_skel_ops *ops;
	struct pyx_session_opts opts;
	void *skel;
	struct bpf_object *obj;
	struct pyx_ctl *ctl;
	struct bpf_link **links;
	size_t nr_links;
	struct ring_buffer *ringbuf;
	bool has_urgent; /* ring 0 of ringbuf is the urgent one */
	int epoll_fd;
	int signal_fd;
	int pid_fd;
	int timer_fd;
	int tick_fd; /* opts.tick_ns: the command's controller (on_tick) */
	sigset_t old_mask;
	bool mask_changed;
	uint64_t start_ns;
	enum pyx_stop_reason stop;
	int record_err;
	/* Sessions whose rings this one's loop polls (pyx_session__follow). */
	struct pyx_session **followers;
	size_t nr_followers;
};

static const char *const drop_names[PYX_DROP__MAX] = {
	[PYX_DROP_RINGBUF] = "ringbuf",
	[PYX_DROP_OVERFLOW] = "overflow",
	[PYX_DROP_READ] = "read",
	[PYX_DROP_RETURN_DEPTH] = "uretprobe_depth",
	[PYX_DROP_MAP_FULL] = "map_full",
	[PYX_DROP_BUSY] = "busy",
	[PYX_DROP_RATE_LIMITED] = "rate_limited",
	[PYX_DROP_UNPAIRED] = "unpaired",
};

const char *pyx_drop_reason_name(enum pyx_drop_reason reason)
{
	return reason < PYX_DROP__MAX ? drop_names[reason] : NULL;
}

const char *pyx_stop_reason_name(enum pyx_stop_reason reason)
{
	switch (reason) {
	case PYX_STOP_SIGNAL:
		return "signal";
	case PYX_STOP_DURATION:
		return "duration";
	case PYX_STOP_TARGET_EXIT:
		return "target-exit";
	case PYX_STOP_ERROR:
		return "error";
	case PYX_STOP_REQUESTED:
		return "requested";
	default:
		return "running";
	}
}

static int write_config(struct pyx_session *s)
{
	struct bpf_map *map;
	size_t size = 0;
	void *data;

	if (!s->opts.cfg_size)
		return 0;
	map = bpf_object__find_map_by_name(s->obj, CFG_SECTION);
	if (!map) {
		pyx_error(s->opts.ctx, "internal: BPF object %s has no %s section", s->ops->name,
			  CFG_SECTION);
		return -ENOENT;
	}
	data = bpf_map__initial_value(map, &size);
	if (!data || size < s->opts.cfg_size) {
		pyx_error(s->opts.ctx, "internal: %s of %s is %zu bytes, config is %zu",
			  CFG_SECTION, s->ops->name, size, s->opts.cfg_size);
		return -EINVAL;
	}
	memcpy(data, s->opts.cfg, s->opts.cfg_size);
	return 0;
}

static int find_ctl(struct pyx_session *s)
{
	struct bpf_map *map = bpf_object__find_map_by_name(s->obj, CTL_SECTION);
	size_t size = 0;

	if (!map) {
		pyx_error(s->opts.ctx, "internal: BPF object %s has no %s section", s->ops->name,
			  CTL_SECTION);
		return -ENOENT;
	}
	/* After load this is the kernel-shared mmap of the section. */
	s->ctl = bpf_map__initial_value(map, &size);
	if (!s->ctl || size < sizeof(*s->ctl))
		return -EINVAL;
	return 0;
}

static int handle_record(void *cookie, void *data, size_t size)
{
	struct pyx_session *s = cookie;
	const struct pyx_rec_hdr *hdr = data;
	int err;

	/* A malformed record is a bug on our side; count it, keep going. */
	if (size < sizeof(*hdr) || hdr->size > size) {
		pyx_debug(s->opts.ctx, "ignoring malformed record (%zu bytes)", size);
		return 0;
	}
	if (!s->opts.on_record)
		return 0;
	err = s->opts.on_record(s->opts.cookie, hdr, hdr->size);
	if (err < 0) {
		/* Returning it would abort libbpf's consume loop mid-buffer: stop after it instead. */
		s->record_err = err;
		s->stop = PYX_STOP_ERROR;
	}
	return 0;
}

static int setup_ringbuf(struct pyx_session *s)
{
	struct bpf_map *map = bpf_object__find_map_by_name(s->obj, RINGBUF_NAME);
	struct bpf_map *urgent = bpf_object__find_map_by_name(s->obj, URGENT_RINGBUF_NAME);
	int err;

	if (urgent && bpf_map__type(urgent) != BPF_MAP_TYPE_RINGBUF)
		urgent = NULL;
	if (!map || bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF)
		map = NULL;
	if (!map && !urgent)
		return 0;
	/* Rings are consumed in the order they were added: the urgent one first. */
	s->ringbuf = ring_buffer__new(bpf_map__fd(urgent ? urgent : map), handle_record, s, NULL);
	if (!s->ringbuf)
		goto out_error;
	s->has_urgent = urgent != NULL;
	if (urgent && map && ring_buffer__add(s->ringbuf, bpf_map__fd(map), handle_record, s))
		goto out_error;
	return 0;
out_error:
	err = -errno;
	pyx_error(s->opts.ctx, "cannot create the ring buffer consumer: %s", strerror(-err));
	return err;
}

void pyx_session__drain_urgent(struct pyx_session *s)
{
	struct ring *ring;

	if (!s->ringbuf || !s->has_urgent)
		return;
	ring = ring_buffer__ring(s->ringbuf, 0);
	if (ring)
		ring__consume(ring);
}

static int epoll_add(struct pyx_session *s, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/*
 * SIGINT/SIGTERM arrive through a signalfd so the loop can flush and detach
 * in order; the previous mask is restored on destroy.
 */
/* A periodic timer every @period_ns in the event loop. */
static int add_timer(struct pyx_session *s, uint64_t period_ns, int *fd)
{
	struct itimerspec its = {
		.it_value.tv_sec = (time_t)(period_ns / 1000000000ull),
		.it_value.tv_nsec = (long)(period_ns % 1000000000ull),
	};

	its.it_interval = its.it_value;
	*fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (*fd < 0)
		return -errno;
	if (timerfd_settime(*fd, 0, &its, NULL))
		return -errno;
	return epoll_add(s, *fd);
}

static int setup_poll(struct pyx_session *s)
{
	sigset_t mask;
	int err;

	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &s->old_mask))
		return -errno;
	s->mask_changed = true;
	s->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->signal_fd < 0)
		return -errno;
	err = epoll_add(s, s->signal_fd);
	if (err)
		return err;
	if (s->ringbuf) {
		err = epoll_add(s, ring_buffer__epoll_fd(s->ringbuf));
		if (err)
			return err;
	}
	if (s->opts.target_pid > 0) {
		s->pid_fd = (int)syscall(SYS_pidfd_open, s->opts.target_pid, 0);
		if (s->pid_fd < 0)
			return errno == ESRCH ? -ESRCH : -errno;
		err = epoll_add(s, s->pid_fd);
		if (err)
			return err;
	}
	if (s->opts.interval_ns) {
		err = add_timer(s, s->opts.interval_ns, &s->timer_fd);
		if (err)
			return err;
	}
	if (s->opts.tick_ns && s->opts.on_tick)
		return add_timer(s, s->opts.tick_ns, &s->tick_fd);
	return 0;
}

int pyx_session__start(struct pyx_session **out, const struct pyx_skel_ops *ops,
		       const struct pyx_session_opts *opts)
{
	const struct pyx_ctx *ctx = opts->ctx;
	struct pyx_session *s;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->opts = *opts;
	s->epoll_fd = s->signal_fd = s->pid_fd = s->timer_fd = s->tick_fd = -1;

	s->skel = ops->open(NULL);
	if (!s->skel) {
		err = -errno;
		pyx_error(ctx, "cannot open BPF object %s: %s", ops->name, strerror(-err));
		goto out_free;
	}
	s->obj = ops->object(s->skel);
	err = write_config(s);
	if (err)
		goto out_destroy;
	if (opts->prepare) {
		err = opts->prepare(opts->cookie, s->skel);
		if (err)
			goto out_destroy;
	}
	err = ops->load(s->skel);
	if (err) {
		pyx_error(ctx, "cannot load BPF object %s: %s (run with -vvv for the verifier log)",
			  ops->name, strerror(-err));
		goto out_destroy;
	}
	err = find_ctl(s);
	if (err)
		goto out_destroy;
	err = setup_ringbuf(s);
	if (err)
		goto out_destroy;
	if (opts->attach) {
		err = opts->attach(opts->cookie, s, s->skel);
		if (err)
			goto out_destroy;
	}
	err = opts->follower ? 0 : setup_poll(s);
	if (err) {
		if (err == -ESRCH)
			pyx_error(ctx, "process %d exited before tracing started",
				  opts->target_pid);
		else
			pyx_error(ctx, "cannot set up the event loop: %s", strerror(-err));
		goto out_destroy;
	}
	/* Everything is attached: from now on, events are complete. */
	s->start_ns = pyx_monotonic_ns();
	__atomic_store_n(&s->ctl->ready, 1, __ATOMIC_RELEASE);
	pyx_info(ctx, "%s: %zu probe link%s attached, tracing", ops->name, s->nr_links,
		 s->nr_links == 1 ? "" : "s");
	if (opts->resume_pid > 0 && kill(opts->resume_pid, SIGCONT)) {
		err = -errno;
		pyx_error(ctx, "cannot resume the launched command: %s", strerror(-err));
		goto out_destroy;
	}
	*out = s;
	return 0;

out_destroy:
	pyx_session__destroy(s);
	return err;
out_free:
	free(s);
	return err;
}

static void consume_all(struct pyx_session *s)
{
	size_t i;

	if (s->ringbuf)
		ring_buffer__consume(s->ringbuf);
	for (i = 0; i < s->nr_followers; i++)
		pyx_session__consume(s->followers[i]);
}

static bool consume_follower(struct pyx_session *s, int fd)
{
	size_t i;

	for (i = 0; i < s->nr_followers; i++)
		if (s->followers[i]->ringbuf &&
		    ring_buffer__epoll_fd(s->followers[i]->ringbuf) == fd) {
			pyx_session__consume(s->followers[i]);
			return true;
		}
	return false;
}

int pyx_session__follow(struct pyx_session *loop, struct pyx_session *follower)
{
	struct pyx_session **list;
	int err;

	list = realloc(loop->followers, (loop->nr_followers + 1) * sizeof(*list));
	if (!list)
		return -ENOMEM;
	loop->followers = list;
	if (follower->ringbuf) {
		err = epoll_add(loop, ring_buffer__epoll_fd(follower->ringbuf));
		if (err)
			return err;
	}
	loop->followers[loop->nr_followers++] = follower;
	return 0;
}

void pyx_session__unfollow(struct pyx_session *loop, struct pyx_session *follower)
{
	size_t i;

	for (i = 0; i < loop->nr_followers; i++) {
		if (loop->followers[i] != follower)
			continue;
		if (follower->ringbuf)
			epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL,
				  ring_buffer__epoll_fd(follower->ringbuf), NULL);
		loop->followers[i] = loop->followers[--loop->nr_followers];
		return;
	}
}

static int run_interval(struct pyx_session *s, bool final)
{
	int err;

	if (!s->opts.on_interval)
		return 0;
	err = s->opts.on_interval(s->opts.cookie, s, final);
	return err < 0 ? err : 0;
}

static void drain_signal(struct pyx_session *s)
{
	struct signalfd_siginfo info;

	while (read(s->signal_fd, &info, sizeof(info)) == sizeof(info))
		pyx_debug(s->opts.ctx, "received signal %u, stopping", info.ssi_signo);
}

static int wait_timeout_ms(const struct pyx_session *s)
{
	uint64_t elapsed, left;

	if (!s->opts.duration_ns)
		return -1;
	elapsed = pyx_monotonic_ns() - s->start_ns;
	if (elapsed >= s->opts.duration_ns)
		return 0;
	left = s->opts.duration_ns - elapsed;
	return (int)((left + 999999) / 1000000);
}

int pyx_session__run(struct pyx_session *s)
{
	struct epoll_event events[8];
	int err = 0, n, i;

	while (s->stop == PYX_STOP_NONE) {
		n = epoll_wait(s->epoll_fd, events, PYX_ARRAY_SIZE(events), wait_timeout_ms(s));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			s->stop = PYX_STOP_ERROR;
			break;
		}
		for (i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == s->signal_fd) {
				drain_signal(s);
				s->stop = PYX_STOP_SIGNAL;
			} else if (fd == s->pid_fd) {
				s->stop = PYX_STOP_TARGET_EXIT;
			} else if (fd == s->timer_fd) {
				uint64_t ticks;

				if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
					pyx_debug(s->opts.ctx, "timerfd read: %s", strerror(errno));
				consume_all(s);
				err = run_interval(s, false);
				if (err)
					s->stop = PYX_STOP_ERROR;
			} else if (fd == s->tick_fd) {
				uint64_t ticks;

				if (read(s->tick_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
					pyx_debug(s->opts.ctx, "timerfd read: %s", strerror(errno));
				err = s->opts.on_tick(s->opts.cookie, s);
				if (err)
					s->stop = PYX_STOP_ERROR;
			} else if (!consume_follower(s, fd) && s->ringbuf) {
				ring_buffer__consume(s->ringbuf);
			}
		}
		if (s->stop == PYX_STOP_NONE && s->opts.duration_ns &&
		    pyx_monotonic_ns() - s->start_ns >= s->opts.duration_ns)
			s->stop = PYX_STOP_DURATION;
	}
	/* Whatever ended the loop, flush what the kernel still holds, then report. */
	consume_all(s);
	if (!err)
		err = s->record_err;
	if (run_interval(s, true) && !err)
		err = -EIO;
	return err;
}

void pyx_session__quiesce(struct pyx_session *session)
{
	if (session->ctl)
		__atomic_store_n(&session->ctl->ready, 0, __ATOMIC_RELEASE);
}

void pyx_session__request_stop(struct pyx_session *session)
{
	pyx_session__stop_for(session, PYX_STOP_REQUESTED);
}

void pyx_session__stop_for(struct pyx_session *session, enum pyx_stop_reason reason)
{
	if (session->stop == PYX_STOP_NONE)
		session->stop = reason;
}

enum pyx_stop_reason pyx_session__stop_reason(const struct pyx_session *session)
{
	return session->stop;
}

int pyx_session__attach_perf(struct pyx_session *session, struct bpf_program *prog,
			     struct perf_event_attr *attr, pid_t pid, int cpu)
{
	struct bpf_link *link;
	int fd, err;

	fd = (int)syscall(SYS_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	link = bpf_program__attach_perf_event(prog, fd);
	if (!link) {
		err = -errno;
		close(fd);
		return err;
	}
	/* The link owns the event now: destroying it closes the fd. */
	return pyx_session__add_link(session, link);
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/*
 * Destroying a uprobe link waits for the kernel to be sure no handler runs
 * (~35 ms here), while the target still pays the trap of every probe not yet
 * gone: the links go at once, each from its own thread.
 */
static void destroy_links(struct bpf_link **links, size_t n)
{
	pthread_t *threads = n > 1 ? calloc(n, sizeof(*threads)) : NULL;
	bool *started = n > 1 ? calloc(n, sizeof(*started)) : NULL;
	size_t i;

	for (i = 0; i < n; i++)
		if (!threads || !started ||
		    pthread_create(&threads[i], NULL, destroy_link, links[i]))
			bpf_link__destroy(links[i]);
		else
			started[i] = true;
	for (i = 0; started && i < n; i++)
		if (started[i])
			pthread_join(threads[i], NULL);
	free(threads);
	free(started);
}

struct link_batch {
	struct bpf_link **links;
	size_t n;
};

static void *destroy_batch(void *arg)
{
	struct link_batch *batch = arg;

	destroy_links(batch->links, batch->n);
	free(batch->links);
	free(batch);
	return NULL;
}

/*
 * A follower's links (its process has ended, or it is not to be traced any
 * more) go from a thread of their own: the kernel removes uprobes one after
 * the other (~90 ms each here), which stalled the loop of every other
 * process for ~0.5 s at each traced process's end (crash's six probes), and
 * the processes that started meanwhile were looked at too late. The
 * follower's programs and maps go at once: its links hold the kernel's
 * references until they are gone.
 */
static void destroy_links_later(struct bpf_link **links, size_t n)
{
	struct link_batch *batch = malloc(sizeof(*batch));
	pthread_attr_t attr;
	pthread_t thread;
	bool started = false;

	if (batch && !pthread_attr_init(&attr)) {
		batch->links = links;
		batch->n = n;
		started = !pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) &&
			  !pthread_create(&thread, &attr, destroy_batch, batch);
		pthread_attr_destroy(&attr);
	}
	if (started)
		return;
	free(batch);
	destroy_links(links, n);
	free(links);
}

void pyx_session__detach(struct pyx_session *session)
{
	/* Not ready first: no handler sees half of its partners gone. */
	pyx_session__quiesce(session);
	destroy_links(session->links, session->nr_links);
	session->nr_links = 0;
}

void pyx_session__consume(struct pyx_session *session)
{
	if (session->ringbuf)
		ring_buffer__consume(session->ringbuf);
}

void pyx_session__reattached(struct pyx_session *session)
{
	if (session->ctl)
		__atomic_store_n(&session->ctl->ready, 1, __ATOMIC_RELEASE);
}

int pyx_session__add_link(struct pyx_session *session, struct bpf_link *link)
{
	struct bpf_link **links;

	if (!link)
		return -EINVAL;
	links = realloc(session->links, (session->nr_links + 1) * sizeof(*links));
	if (!links) {
		bpf_link__destroy(link);
		return -ENOMEM;
	}
	session->links = links;
	session->links[session->nr_links++] = link;
	return 0;
}

void *pyx_session__skel(const struct pyx_session *session)
{
	return session->skel;
}

void pyx_session__drops(const struct pyx_session *session, uint64_t drops[PYX_DROP__MAX])
{
	unsigned int i;

	for (i = 0; i < PYX_DROP__MAX; i++)
		drops[i] = session->ctl ? __atomic_load_n(&session->ctl->drops[i], __ATOMIC_RELAXED)
					: 0;
}

uint64_t pyx_session__elapsed_ns(const struct pyx_session *session)
{
	return session->start_ns ? pyx_monotonic_ns() - session->start_ns : 0;
}

void pyx_session__destroy(struct pyx_session *s)
{
	if (!s)
		return;
	if (s->ctl)
		__atomic_store_n(&s->ctl->ready, 0, __ATOMIC_RELEASE);
	/* Detach first, so nothing fires into maps that are going away. */
	if (s->opts.follower && s->nr_links) {
		destroy_links_later(s->links, s->nr_links);
	} else {
		destroy_links(s->links, s->nr_links);
		free(s->links);
	}
	free(s->followers);
	ring_buffer__free(s->ringbuf);
	if (s->skel)
		s->ops->destroy(s->skel);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	if (s->tick_fd >= 0)
		close(s->tick_fd);
	if (s->pid_fd >= 0)
		close(s->pid_fd);
	if (s->signal_fd >= 0)
		close(s->signal_fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	if (s->mask_changed)
		sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
	free(s);
}

int pyx_session__trace(const struct pyx_skel_ops *ops, const struct pyx_session_opts *opts)
{
	struct pyx_session *session = NULL;
	int err;

	err = pyx_session__start(&session, ops, opts);
	if (err)
		return err;
	err = pyx_session__run(session);
	pyx_session__destroy(session);
	return err;
}
