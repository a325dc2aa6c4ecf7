/*
|--------------------------------------------------------------------------
| Flags shared by the commands that run a rewrap (rotate:kek, reencrypt)
|--------------------------------------------------------------------------
|
| One definition of each flag both commands take; each command still
| declares its flags itself (`@flags.number(WORKERS_FLAG)`), so the order
| of its `--help` stays the order of its own declarations. The values are
| validated by `localWorkersRule` (#validators/rotation).
|
*/

/** `--workers N`: the run cut into chunks, worked by N local `rewrap:worker` processes. */
export const WORKERS_FLAG = {
  description:
    'Cut the run into chunks (jobs on the database) and work them with N local rewrap:worker processes',
}

/** `--distributed`: the run cut into chunks for `rewrap:worker` processes anywhere. */
export const DISTRIBUTED_FLAG = {
  description:
    'Cut the run into chunks and put them on the queue for rewrap:worker processes anywhere; follow its progress',
}

/** `--nice-ratio N`: fixed pacing while other sessions use the database. */
export const NICE_RATIO_FLAG = {
  description:
    "While other sessions use the database, sleep N × each batch's time (fixed: pacing by the nice ratio; 0 = full speed; with --latency-budget: the starting duty)",
}

/** `--latency-budget RATIO`: pacing by the foreground's p99 against its idle p99. */
export const LATENCY_BUDGET_FLAG = {
  description:
    'While other sessions use the database, work as much as keeps the API p99 within RATIO × its idle p99 (default pacing, 1.2 from config/rewrap.ts; an explicit --nice-ratio alone fixes the duty instead)',
}
