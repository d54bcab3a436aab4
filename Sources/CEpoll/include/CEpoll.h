// epoll for Swift: Glibc's Swift module does not export <sys/epoll.h>, so this header does.
// struct epoll_event is packed on x86_64 (12 bytes, `data` unaligned), which Swift imports
// awkwardly; the helpers below read and write it in C so Swift never touches the layout.
// Linux only: on other systems the header is empty and the target builds to nothing.
#ifndef CEPOLL_H
#define CEPOLL_H

#if defined(__linux__)
#include <stdint.h>
#include <sys/epoll.h>

/// Adds (`op` EPOLL_CTL_ADD), changes (EPOLL_CTL_MOD) or removes (EPOLL_CTL_DEL) `fd` with
/// interest `events` and `token` as the event's data. Returns epoll_ctl's result (errno set).
static inline int cepoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

/// The size of one event as epoll_wait writes them, for allocating the buffer in Swift.
static inline int cepoll_event_size(void) { return (int)sizeof(struct epoll_event); }

/// Waits like epoll_wait into `buffer`, an array of `max` events of cepoll_event_size() bytes.
static inline int cepoll_wait(int epfd, void *buffer, int max, int timeout_ms) {
    return epoll_wait(epfd, (struct epoll_event *)buffer, max, timeout_ms);
}

/// The ready events and the token of event `i` in a buffer filled by cepoll_wait.
static inline uint32_t cepoll_event_events(const void *buffer, int i) {
    return ((const struct epoll_event *)buffer)[i].events;
}

static inline uint64_t cepoll_event_token(const void *buffer, int i) {
    return ((const struct epoll_event *)buffer)[i].data.u64;
}

static const uint32_t CEPOLL_IN = EPOLLIN;
static const uint32_t CEPOLL_OUT = EPOLLOUT;
static const uint32_t CEPOLL_ERR = EPOLLERR;
static const uint32_t CEPOLL_HUP = EPOLLHUP;
static const uint32_t CEPOLL_RDHUP = EPOLLRDHUP;
static const int CEPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int CEPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int CEPOLL_CTL_DEL = EPOLL_CTL_DEL;
static const int CEPOLL_CLOEXEC = EPOLL_CLOEXEC;
#endif

#endif
