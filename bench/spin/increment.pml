/* The seed's increment (examples/seed/locked_increment.py, unsafe_increment.py) as a Promela
 * model for SPIN, at the grain of `gilcheck check … --python every`: a thread may be switched
 * out between any two of the steps below, which are the bytecodes of the read-modify-write
 * (BINARY_SUBSCR, BINARY_OP +=, STORE_SUBSCR) and, with -DLOCKED, the lock's acquire (which
 * waits while the lock is held) and release. Main waits for every worker, as the seed's join
 * loop does, then asserts the count the seed prints.
 *
 *   spin -DTHREADS=4 -DITERATIONS=2 -DLOCKED -a increment.pml && gcc -O2 -DSAFETY -o pan pan.c
 *   ./pan -m100000
 *
 * What this model leaves out and gilcheck's states include: the main thread's own bytecode
 * (building and starting the threads, the joins), the GIL's holder and drop requests, the
 * refcounts and the heap, each thread's frame and its loop counter as a Python object. */

#ifndef THREADS
#define THREADS 4
#endif
#ifndef ITERATIONS
#define ITERATIONS 2
#endif

int counter = 0;
bool held = false;
byte finished = 0;

active [THREADS] proctype worker() {
    short i = 0;
    int value;
    do
    :: i < ITERATIONS ->
#ifdef LOCKED
        atomic { !held -> held = true };   /* with lock: acquire, blocks while held */
#endif
        value = counter;                   /* shared_counter["value"]: the read */
        value = value + 1;                 /* += 1 */
        counter = value;                   /* the write */
#ifdef LOCKED
        held = false;                      /* release */
#endif
        i++
    :: else -> break
    od;
    finished++
}

active proctype main() {
    (finished == THREADS);                 /* for thread in threads: thread.join() */
    assert(counter == THREADS * ITERATIONS)
}
