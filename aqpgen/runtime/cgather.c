/* aqpgen.runtime.cgather -- the compiled checked gather behind Table.lookup (optional).
 *
 * One function:
 *
 *     gather(row, counts, out, nthreads) -> bool
 *
 * row      float64, C-contiguous, length K + 1 (row[n] = c_K[n]; row[0] is padding)
 * counts   int64 or int32, C-contiguous, any length n
 * out      float64, C-contiguous, writable, length n
 * nthreads number of threads to split the work over (1 = this thread only)
 *
 * Writes out[i] = row[counts[i]] and returns True when every count lies in 1..K.  Returns False
 * as soon as the whole array is done if any count lies outside 1..K; out then holds unspecified
 * values and the caller must discard it (it never reads outside row: an invalid count reads
 * row[0]).  The range check is fused into the gather: (uint64)(n - 1) < K holds exactly for
 * 1 <= n <= K, and it is one compare per count on data already in a register.
 *
 * Why it exists: numpy's row.take(counts) plus counts.min() costs ~0.45 ns per count on the
 * development machine; this loop on two threads ~0.27 ns (bench/bench_lookup.py).  The work is
 * split into contiguous chunks; threads are created per call (no pool survives a fork) and only
 * for arrays where the gain exceeds the ~20 us of creating one (the caller decides).  The GIL
 * is released while the loop runs; the buffers stay exported (pinned) meanwhile.
 *
 * Built by setup.py as an optional extension: when it cannot be compiled, aqpgen.runtime.gather
 * falls back to numpy and every result is the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifndef _WIN32
#include <pthread.h>
#define AQP_THREADS 1
#else
#define AQP_THREADS 0
#endif

#define MAX_THREADS 16

typedef struct {
    const double *row;
    uint64_t K;
    const char *counts; /* first count of this chunk */
    int wide;           /* 1: int64 counts, 0: int32 counts */
    double *out;        /* first output of this chunk */
    Py_ssize_t n;       /* counts in this chunk */
    uint64_t bad;       /* nonzero: some count of the chunk is outside 1..K */
} chunk_t;

static void run_chunk(chunk_t *c)
{
    const double *row = c->row;
    const uint64_t K = c->K;
    double *out = c->out;
    const Py_ssize_t n = c->n;
    uint64_t bad = 0;
    if (c->wide) {
        const int64_t *p = (const int64_t *)c->counts;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)p[i];
            uint64_t b = (v - 1) >= K;
            bad |= b;
            out[i] = row[b ? 0 : v];
        }
    } else {
        const int32_t *p = (const int32_t *)c->counts;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)(int64_t)p[i];
            uint64_t b = (v - 1) >= K;
            bad |= b;
            out[i] = row[b ? 0 : v];
        }
    }
    c->bad = bad;
}

#if AQP_THREADS
static void *thread_main(void *arg)
{
    run_chunk((chunk_t *)arg);
    return NULL;
}
#endif

/* Split [0, n) into `nthreads` chunks and run them, chunk 0 on this thread.  A thread that cannot
 * be created has its chunk run here instead (same result, just slower). */
static uint64_t run_all(chunk_t *chunks, int nthreads)
{
    uint64_t bad = 0;
#if AQP_THREADS
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS];
    for (int t = 1; t < nthreads; t++)
        started[t] = pthread_create(&tids[t], NULL, thread_main, &chunks[t]) == 0;
    run_chunk(&chunks[0]);
    for (int t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            run_chunk(&chunks[t]);
    }
#else
    for (int t = 0; t < nthreads; t++)
        run_chunk(&chunks[t]);
#endif
    for (int t = 0; t < nthreads; t++)
        bad |= chunks[t].bad;
    return bad;
}

static PyObject *cgather(PyObject *self, PyObject *args)
{
    PyObject *row_o, *counts_o, *out_o;
    int nthreads;
    Py_buffer row, counts, out;
    PyObject *result = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOi:gather", &row_o, &counts_o, &out_o, &nthreads))
        return NULL;
    if (PyObject_GetBuffer(row_o, &row, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(counts_o, &counts, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&row);
        return NULL;
    }
    if (PyObject_GetBuffer(out_o, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&counts);
        PyBuffer_Release(&row);
        return NULL;
    }
    /* formats: numpy writes "d" for float64 and one of "q", "l" (int64) / "i", "l" (int32, where
     * long is 32-bit) for the counts; the item size decides the width. */
    const char *cf = counts.format ? counts.format : "B";
    const char *rf = row.format ? row.format : "B";
    const char *of = out.format ? out.format : "B";
    size_t cl = strlen(cf);
    int signed_int = cl > 0 && strchr("bhilq", cf[cl - 1]) != NULL && cf[0] != '>' && cf[0] != '!';
    Py_ssize_t n = counts.len / (counts.itemsize ? counts.itemsize : 1);
    if (row.itemsize != 8 || strcmp(rf + (rf[0] == '<' || rf[0] == '=' || rf[0] == '@'), "d") != 0
        || out.itemsize != 8 || strcmp(of + (of[0] == '<' || of[0] == '=' || of[0] == '@'), "d") != 0
        || !signed_int || (counts.itemsize != 8 && counts.itemsize != 4)) {
        PyErr_SetString(PyExc_TypeError,
                        "gather: row and out must be float64, counts int64 or int32 (native order)");
        goto done;
    }
    if (row.len < 16) {
        PyErr_SetString(PyExc_ValueError, "gather: row must have length K + 1 >= 2");
        goto done;
    }
    if (out.len != n * 8) {
        PyErr_SetString(PyExc_ValueError, "gather: out must have as many items as counts");
        goto done;
    }
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    if (nthreads > n)
        nthreads = n > 0 ? (int)n : 1;
    {
        chunk_t chunks[MAX_THREADS];
        const uint64_t K = (uint64_t)(row.len / 8 - 1);
        Py_ssize_t start = 0;
        uint64_t bad;
        for (int t = 0; t < nthreads; t++) {
            Py_ssize_t stop = n / nthreads * (t + 1) + (t + 1 == nthreads ? n % nthreads : 0);
            chunks[t].row = (const double *)row.buf;
            chunks[t].K = K;
            chunks[t].counts = (const char *)counts.buf + start * counts.itemsize;
            chunks[t].wide = counts.itemsize == 8;
            chunks[t].out = (double *)out.buf + start;
            chunks[t].n = stop - start;
            chunks[t].bad = 0;
            start = stop;
        }
        Py_BEGIN_ALLOW_THREADS
        bad = run_all(chunks, nthreads);
        Py_END_ALLOW_THREADS
        result = PyBool_FromLong(bad == 0);
    }
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&row);
    return result;
}

static PyMethodDef methods[] = {
    {"gather", cgather, METH_VARARGS,
     "gather(row, counts, out, nthreads) -> bool: out[i] = row[counts[i]]; False if any count is "
     "outside 1..len(row) - 1 (out is then to be discarded)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "cgather",
    "The compiled checked gather behind aqpgen's Table.lookup (see aqpgen.runtime.gather).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_cgather(void)
{
    return PyModule_Create(&moduledef);
}
