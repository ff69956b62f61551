# walkthrough.gdb - 01-blocking: a guided tour. Start with: make gdb M=01
# (threads mode: make gdb M=01 ARGS="--mode threads")
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass

break setup_listener
commands
  silent
  echo \n[tour 1] setup_listener: socket, bind, listen - the same three calls as Winsock\n
  print opts
  if $tour_batch
    continue
  end
end

break on_accept
commands
  silent
  echo \n[tour 2] on_accept: the next line blocks in accept() until a client connects\n
  echo          (type "next" a few times, then connect: nc 127.0.0.1 9001)\n
  print listen_fd
  if $tour_batch
    continue
  end
end

break serve_client
commands
  silent
  echo \n[tour 3] serve_client: one client, served to the end; everyone else waits\n
  print *c
  if $tour_batch
    continue
  end
end

break buf_drain
commands
  silent
  echo \n[tour 4] buf_drain: send() the bytes back; it blocks while the client is not reading\n
  print b->len
  print (char *) b->data
  if $tour_batch
    continue
  end
end

break conn_close
commands
  silent
  echo \n[tour 5] conn_close: recv() returned 0 (the client left) or an error; closesocket = close\n
  print c->fd
  print c->peer
  if $tour_batch
    continue
  end
end

break stats_print_summary
commands
  silent
  echo \n[tour 6] shutdown: SIGTERM's handler shut the listening socket, accept() failed, the loop ended\n
  print *s
  if $tour_batch
    continue
  end
end

echo Tour loaded. Type "run", then in another terminal: nc 127.0.0.1 9001\n
