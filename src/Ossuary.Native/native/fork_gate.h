/*
 * The fork gate (fork_gate.c): the entry points of runtime_start.c count each call in and out,
 * and fork() waits until no other thread is inside one.
 */
#ifndef OSSUARY_FORK_GATE_H
#define OSSUARY_FORK_GATE_H

/* 1 once the gate is set up. */
int fork_gate_is_set_up(void);

/* 1 once the gate is set up; otherwise tries to, or waits for another thread's try: 0 with *failed naming the
   function that failed and *error its errno, or with *failed NULL and *error ETIMEDOUT when another thread's try
   had not ended after a second. */
int fork_gate_set_up(const char **failed, int *error);

/* Counts a call in, first waiting for any fork under way; returns the token fork_gate_leave() takes. */
int fork_gate_enter(void);

/* Counts out the call that fork_gate_enter() returned `entered` for. */
void fork_gate_leave(int entered);

#endif
