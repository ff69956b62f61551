# walkthrough.gdb - 06-aio-overlapped: a guided tour. Start with: make gdb M=06
# (ARGS="--notify callback" for completion routines on glibc's threads.)
# Every request runs on a glibc helper thread: "info threads" shows them
# come (one per client waiting for input) and go (1 s after their last
# request).
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
# glibc starts and ends helper threads all the time: news the first time only.
set print thread-events off

break setup_aio
commands
  silent
  echo \n[tour 1] setup_aio: before any request, size glibc's helper-thread pool (aio_init)\n
  echo One thread per client waiting for input: -c of them, +1 for the waiter's wake_op\n
  print opts.max_clients
  print notify
  if $tour_batch
    continue
  end
end

break conn_post
commands
  silent
  echo \n[tour 2] conn_post: WSARecv or WSASend - an aiocb (the OVERLAPPED) describes the request\n
  print op
  print c->fd
  echo The echo buffer: empty before a recv (which may fill all of it), full before a send\n
  print c->echo
  echo The request in flight: OP_NONE until aio_read/aio_write below (finish, then print c->op)\n
  print c->in_flight
  if $tour_batch
    continue
  end
end

break on_complete
commands
  silent
  echo \n[tour 3] on_complete: the waiter (or a callback thread) asks one request how it ended\n
  print c->in_flight
  echo aio_error(): 0 once done, EINPROGRESS (115) while glibc's helper still runs it (the notes' 0x103):\n
  print c->op.__error_code
  echo The threads: main in poll, the waiter here, helpers blocked in read():\n
  info threads
  if $tour_batch
    continue
  end
end

break on_send_complete
commands
  silent
  echo \n[tour 4] on_send_complete: the echo went back (WSAGetOverlappedResult's byte count)\n
  print bytes
  print error
  echo Next: the rest of a short send, or the next recv - never both at once\n
  print c->echo.len
  if $tour_batch
    continue
  end
end

break conn_close
commands
  silent
  echo \n[tour 5] conn_close: the client left; nothing is in flight, so glibc holds nothing of c\n
  print c->in_flight
  print c->peer
  if $tour_batch
    continue
  end
end

break shutdown_all
commands
  silent
  echo \n[tour 6] shutdown_all: SIGTERM; shutdown(2) ends the requests in flight, then we wait for them\n
  print stats.current
  info threads
  if $tour_batch
    continue
  end
end

echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9006\n
