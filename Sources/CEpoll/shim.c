// Empty: CEpoll is header-only (static inline helpers in include/CEpoll.h); SwiftPM needs a
// source file to build a C target.
