/* Owns the loop-lag probe of the runtime (the `loop-stats` command): a
 * timer on the runtime loop every LS_LAG_PERIOD_MS that records how much
 * later than due it fired. A callback that holds the loop for B ms makes
 * the tick due meanwhile between B - LS_LAG_PERIOD_MS and B ms late, so the
 * worst lateness of a window is about the worst stall that every other
 * timer of the loop (QUIC retransmissions, pings) suffered in it. Each read hands out the window's
 * figures and starts a new window. Loop thread only. */
#include "peer/runtime.h"

/* Records how late the tick due after the last one is at `now`. */
static void note_lateness(ls_lag_probe *lag, uint64_t now)
{
  uint64_t due = lag->last_ns + (uint64_t)LS_LAG_PERIOD_MS * 1000000u;
  if (now > due && now - due > lag->worst_ns)
    lag->worst_ns = now - due;
}

static void on_lag_tick(uv_timer_t *t)
{
  ls_lag_probe *lag = t->data;
  uint64_t now = uv_hrtime();
  note_lateness(lag, now);
  lag->last_ns = now;
  lag->ticks++;
}

void ls_lag_init(ls_peer *p)
{
  uv_timer_init(&p->loop, &p->lag.timer);
  p->lag.timer.data = &p->lag;
}

void ls_lag_start(ls_peer *p)
{
  p->lag.last_ns = p->lag.window_ns = uv_hrtime();
  uv_timer_start(&p->lag.timer, on_lag_tick, LS_LAG_PERIOD_MS, LS_LAG_PERIOD_MS);
}

void ls_lag_close(ls_peer *p)
{
  uv_close((uv_handle_t *)&p->lag.timer, NULL);
}

json_t *ls_lag_take(ls_peer *p)
{
  ls_lag_probe *lag = &p->lag;
  uint64_t now = uv_hrtime();
  note_lateness(lag, now); /* a tick overdue now counts too */
  json_t *fields = json_pack("{s:I,s:I,s:I,s:I}",
                             "lag_max_us", (json_int_t)(lag->worst_ns / 1000),
                             "window_ms", (json_int_t)((now - lag->window_ns) / 1000000),
                             "ticks", (json_int_t)lag->ticks,
                             "period_ms", (json_int_t)LS_LAG_PERIOD_MS);
  lag->worst_ns = 0;
  lag->ticks = 0;
  lag->window_ns = now;
  return fields;
}
